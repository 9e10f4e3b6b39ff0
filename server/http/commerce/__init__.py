"""HTTP routes of the commerce capability, by intent:

- `ingest`: `/api/internal/commerce/...`, the ingest API the commerce services call,
  authenticated by the service token (`service_auth`), never by a user token;
- `lookups`: the searches the post-creation flows call and the entity reads, each with its card.

`routes` is every route of the capability, in registration order (the app adds it like any
route table: `app.router.add_routes` takes any sequence of route definitions).
"""

from __future__ import annotations

from aiohttp import web

from server.http.commerce import ingest, lookups

routes: list[web.AbstractRouteDef] = [*ingest.routes, *lookups.routes]
