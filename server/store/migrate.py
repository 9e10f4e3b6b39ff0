"""Schema migrations: plain SQL files in store/migrations, applied by yoyo-migrations."""

from __future__ import annotations

import logging
from pathlib import Path

from yoyo import get_backend, read_migrations

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def apply_migrations(dsn: str) -> list[str]:
    """Apply every pending migration (under yoyo's lock, so concurrent nodes are safe)."""
    backend = get_backend(dsn)
    migrations = read_migrations(str(MIGRATIONS_DIR))
    with backend.lock():
        pending = backend.to_apply(migrations)
        backend.apply_migrations(pending)
    applied = [m.id for m in pending]
    if applied:
        log.info("migrations applied", extra={"migrations": applied})
    return applied


def pending_migrations(dsn: str) -> list[str]:
    backend = get_backend(dsn)
    return [m.id for m in backend.to_apply(read_migrations(str(MIGRATIONS_DIR)))]
