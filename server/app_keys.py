"""Typed application state keys (web.AppKey)."""

from __future__ import annotations

from aiohttp import web

from server.config import Settings
from server.domain.auth_tokens import Principal
from server.domain.context import Context

SETTINGS = web.AppKey("settings", Settings)
CONTEXT = web.AppKey("context", Context)

PRINCIPAL = web.RequestKey("principal", Principal)
