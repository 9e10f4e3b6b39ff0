"""Typed application state keys (web.AppKey)."""

from __future__ import annotations

import asyncio

from aiohttp import web

from server.config import Settings
from server.domain.auth_tokens import Principal
from server.domain.context import Context

SETTINGS = web.AppKey("settings", Settings)
CONTEXT = web.AppKey("context", Context)
# Set when the node begins a graceful drain: readiness answers 503 from then on.
DRAINING = web.AppKey("draining", asyncio.Event)

PRINCIPAL = web.RequestKey("principal", Principal)
