"""HTTP transport: thin handlers per capability over the domain actions."""
