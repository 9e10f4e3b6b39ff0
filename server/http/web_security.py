"""What browsers and reverse proxies may do: the client address behind trusted proxies, CORS
for the listed web origins, and the origin check that keeps cookie-authenticated writes safe
from other origins (CSRF). Settings: `[http] allowed_origins`, `[http] trusted_proxies`.

Why a middleware of our own and not aiohttp-cors: aiohttp-cors configures CORS per route (every
route of every capability would have to be registered with it, and a route added without it is
silently not CORS-enabled), it answers preflights through OPTIONS routes of its own, and its
origin list would be a second one beside the CSRF check's. Here one list serves both, every
route is covered by construction, and the whole policy is the ~60 lines below.

Why the origin check on top of SameSite=Strict cookies: a page on another port of the same
host is the same *site*, so the browser sends Strict cookies with its requests; and a
`text/plain` POST is a "simple" request that needs no preflight (finding 9). Browsers send
`Origin` with every POST / PUT / PATCH / DELETE, so a write whose `Origin` is neither this
server's nor listed is refused before it runs. Clients that are not browsers send no `Origin`
and are not affected.
"""

from __future__ import annotations

import functools
import ipaddress
from urllib.parse import urlsplit

from aiohttp import web

from server.app_keys import SETTINGS
from server.errors import Forbidden

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CORS_METHODS = "GET, HEAD, POST, PUT, PATCH, DELETE"
CORS_REQUEST_HEADERS = "Authorization, Content-Type, Last-Event-ID, X-Request-ID"
CORS_EXPOSED_HEADERS = "X-Request-ID, Retry-After, Location, WWW-Authenticate"
PREFLIGHT_MAX_AGE_S = "600"

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class OriginRefused(Forbidden):
    code = "origin_not_allowed"
    title = "Origin not allowed"


# Client address behind trusted proxies ------------------------------------------------------


@functools.lru_cache(maxsize=16)
def _networks(
    proxies: tuple[str, ...],
) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(p, strict=False) for p in proxies)


def _parse_address(text: str) -> IPAddress | None:
    """An address as proxies write it: `1.2.3.4`, `1.2.3.4:5678`, `[2001:db8::1]:443`,
    `2001:db8::1`, possibly quoted (Forwarded). None for `unknown`, `_hidden` and junk."""
    text = text.strip().strip('"')
    if text.startswith("["):
        text = text[1 : text.find("]")] if "]" in text else ""
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _forwarded_hops(request: web.Request) -> list[str]:
    """The hops the proxies recorded, client first: `Forwarded: for=` (RFC 7239) when present,
    else `X-Forwarded-For`; every header line, in order."""
    forwarded = request.headers.getall("Forwarded", [])
    if forwarded:
        hops = []
        for element in ",".join(forwarded).split(","):
            for pair in element.split(";"):
                name, _, value = pair.strip().partition("=")
                if name.lower() == "for":
                    hops.append(value)
        return hops
    lines = request.headers.getall("X-Forwarded-For", [])
    return [hop for line in lines for hop in line.split(",")]


def _is_trusted(address: IPAddress | None, request: web.Request) -> bool:
    if address is None:
        return False
    networks = _networks(tuple(request.app[SETTINGS].http.trusted_proxies))
    return any(address in network for network in networks)


def client_address(request: web.Request) -> str:
    """The client's address: the TCP peer, unless the peer is a trusted proxy; then the
    right-most hop of its forwarding header that is not itself a trusted proxy. Hops left of
    that one were written by the client (or its own proxies) and can be anything, so they are
    never believed."""
    peer = request.remote or ""
    current = _parse_address(peer)
    if not _is_trusted(current, request):
        return str(current) if current is not None else (peer or "unknown")
    for hop in reversed(_forwarded_hops(request)):
        address = _parse_address(hop)
        if address is None:
            break  # a hop we cannot read: stop at the last proxy we trust
        current = address
        if not _is_trusted(address, request):
            break
    return str(current)


def request_origin(request: web.Request) -> str:
    """This server's origin as the browser sees it: behind a trusted proxy that terminates TLS,
    the scheme it forwarded (X-Forwarded-Proto / Forwarded proto=)."""
    scheme = request.scheme
    if _is_trusted(_parse_address(request.remote or ""), request):
        proto = request.headers.get("X-Forwarded-Proto", "")
        for element in request.headers.get("Forwarded", "").split(","):
            for pair in element.split(";"):
                name, _, value = pair.strip().partition("=")
                if name.lower() == "proto":
                    proto = proto or value.strip('"')
        if proto.split(",")[0].strip().lower() in ("http", "https"):
            scheme = proto.split(",")[0].strip().lower()
    return f"{scheme}://{request.host}".lower()


# CORS and the origin check -----------------------------------------------------------------


def _own_origins(request: web.Request) -> set[str]:
    public = urlsplit(request.app[SETTINGS].server.public_url)
    return {f"{public.scheme}://{public.netloc}".lower(), request_origin(request)}


def _listed(request: web.Request, origin: str) -> bool:
    return origin.lower() in request.app[SETTINGS].http.allowed_origins


def check_origin(request: web.Request) -> None:
    """Refuse a write a browser sent from an origin that is neither ours nor listed."""
    origin = request.headers.get("Origin")
    if origin is None:
        # Older browsers omit Origin on some requests but send Sec-Fetch-Site.
        if request.headers.get("Sec-Fetch-Site", "").lower() in ("same-site", "cross-site"):
            raise OriginRefused("A cross-origin request without an Origin header is refused.")
        return
    if origin.lower() in _own_origins(request) or _listed(request, origin):
        return
    raise OriginRefused(
        f"Requests from {origin} may not change anything here: that origin is not in the "
        "server's allowed origins (http.allowed_origins)."
    )


@web.middleware
async def browser_guard(request: web.Request, handler):
    """Answer CORS preflights; refuse writes from origins that are neither ours nor listed."""
    origin = request.headers.get("Origin")
    if (
        request.method == "OPTIONS"
        and origin is not None
        and "Access-Control-Request-Method" in request.headers
    ):
        if not _listed(request, origin):
            raise OriginRefused(f"{origin} is not an allowed origin of this API.")
        return web.Response(
            status=204,
            headers={
                "Access-Control-Allow-Methods": CORS_METHODS,
                "Access-Control-Allow-Headers": CORS_REQUEST_HEADERS,
                "Access-Control-Max-Age": PREFLIGHT_MAX_AGE_S,
            },
        )
    if request.method not in SAFE_METHODS:
        check_origin(request)
    return await handler(request)


async def cors_headers(request: web.Request, response: web.StreamResponse) -> None:
    """`on_response_prepare`: every response (errors and streams included) to a listed origin
    carries that exact origin with credentials allowed; an unlisted origin gets none."""
    if not request.app[SETTINGS].http.allowed_origins:
        return  # nothing depends on Origin
    vary = response.headers.get("Vary")
    if not vary or "origin" not in vary.lower():
        response.headers["Vary"] = f"{vary}, Origin" if vary else "Origin"
    origin = request.headers.get("Origin")
    if origin is None or not _listed(request, origin):
        return
    response.headers["Access-Control-Allow-Origin"] = origin
    response.headers["Access-Control-Allow-Credentials"] = "true"
    if request.method != "OPTIONS":
        response.headers["Access-Control-Expose-Headers"] = CORS_EXPOSED_HEADERS
