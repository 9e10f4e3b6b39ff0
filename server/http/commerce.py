"""HTTP routes of the commerce capability."""

from __future__ import annotations

from aiohttp import web

routes = web.RouteTableDef()
