"""Durable background work: a PostgreSQL-backed queue and its workers."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web


async def jobs_lifecycle(app: web.Application) -> AsyncIterator[None]:
    """Run the in-process worker of the embedded default (when configured)."""
    yield
