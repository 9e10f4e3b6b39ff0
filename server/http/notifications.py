"""HTTP routes of the notifications capability."""

from __future__ import annotations

from aiohttp import web

routes = web.RouteTableDef()
