"""Business rules, one module per capability. No aiohttp imports here."""
