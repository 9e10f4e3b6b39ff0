"""Service-token authentication of the commerce ingest API.

The caller must be a commerce service: a configured token (config `commerce.service_token`,
`NEXGATE_COMMERCE_SERVICE_TOKEN`; several comma-separated tokens allow rotation) in
`X-Service-Token`, compared in constant time against every candidate. Missing or wrong: 401; a
user's token (or session): 403; no token configured: 503 (ingest disabled). OpenAPI names the
scheme `serviceToken`.
"""

from __future__ import annotations

import functools
import hashlib
import hmac

from aiohttp import web

from server.app_keys import CONTEXT, PRINCIPAL
from server.errors import Forbidden, ServiceUnavailable, Unauthorized

SERVICE_TOKEN_HEADER = "X-Service-Token"


def _digest(value: str) -> bytes:
    return hashlib.sha256(value.encode()).digest()


def require_service(request: web.Request) -> None:
    """The caller must be a commerce service: the configured token in `X-Service-Token`,
    compared in constant time. A user's token is refused with 403, whatever else is sent."""
    if request.get(PRINCIPAL) is not None:
        raise Forbidden(
            "The commerce ingest API is for the commerce services: present the service token "
            f"in {SERVICE_TOKEN_HEADER}, not a user token."
        )
    settings = request.app[CONTEXT].settings
    configured = [t.strip() for t in settings.commerce.service_token.split(",") if t.strip()]
    if not configured:
        raise ServiceUnavailable(
            "Commerce ingest is disabled: no commerce.service_token is configured "
            "(NEXGATE_COMMERCE_SERVICE_TOKEN)."
        )
    presented = request.headers.get(SERVICE_TOKEN_HEADER, "")
    if not presented:
        raise Unauthorized(
            f"Present the commerce service token in the {SERVICE_TOKEN_HEADER} header."
        )
    given = _digest(presented)
    ok = False
    for token in configured:  # every candidate, so timing does not say which one matched
        ok |= hmac.compare_digest(given, _digest(token))
    if not ok:
        raise Unauthorized("The commerce service token is not valid.")


def service_only(handler):
    """Check the service token before the body is read; document the scheme in OpenAPI."""

    @functools.wraps(handler)
    async def wrapped(request: web.Request) -> web.StreamResponse:
        require_service(request)
        return await handler(request)

    # functools.wraps copied the handler's __endpoint__ (set by @endpoint), unseen by mypy.
    wrapped.__endpoint__.extra["security"] = [{"serviceToken": []}]  # type: ignore[attr-defined]
    return wrapped
