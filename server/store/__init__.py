"""PostgreSQL storage: the only place with SQL."""
