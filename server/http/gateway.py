"""HTTP routes of the gateway capability."""

from __future__ import annotations

from aiohttp import web

routes = web.RouteTableDef()
