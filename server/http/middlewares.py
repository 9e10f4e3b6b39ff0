"""Cross-cutting concerns: request id, access log + metrics, errors as problem+json,
authentication and the per-user API rate limit."""

from __future__ import annotations

import logging
import time
import uuid

from aiohttp import web
from aiohttp_session import get_session

from server.app_keys import CONTEXT, PRINCIPAL
from server.bus.faults import is_bus_failure
from server.domain import accounts
from server.domain.auth_tokens import Principal
from server.errors import AppError, Unauthorized
from server.http.metrics import HTTP_LATENCY, HTTP_REQUESTS
from server.http.problems import problem
from server.ids import parse_uuid
from server.logs import request_id_var, user_id_var

log = logging.getLogger("nexgate.http")


def _route_name(request: web.Request) -> str:
    info = request.match_info
    resource = info.route.resource if info.route is not None else None
    if resource is None or getattr(info, "http_exception", None) is not None:
        return "unmatched"
    return resource.canonical


@web.middleware
async def request_context(request: web.Request, handler):
    request_id = request.headers.get("X-Request-ID") or uuid.uuid4().hex
    if len(request_id) > 128:
        request_id = uuid.uuid4().hex
    request_id_var.set(request_id)
    user_id_var.set(None)
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        response.headers["X-Request-ID"] = request_id
        return response
    finally:
        elapsed = time.perf_counter() - started
        route = _route_name(request)
        HTTP_REQUESTS.labels(request.method, route, str(status)).inc()
        HTTP_LATENCY.labels(request.method, route).observe(elapsed)
        if route not in ("/metrics", "/healthz", "/readyz"):
            log.info(
                "%s %s %s",
                request.method,
                request.path,
                status,
                extra={"status": status, "route": route, "duration_ms": round(elapsed * 1000, 2)},
            )


def error_response(exc: AppError) -> web.Response:
    retry_after = getattr(exc, "retry_after", None)  # 429s and 503s that know when to retry
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    if isinstance(exc, Unauthorized):
        headers = {"WWW-Authenticate": "Bearer"}
    return problem(
        exc.status, exc.title, exc.detail, code=exc.code, errors=exc.errors, headers=headers
    )


@web.middleware
async def errors(request: web.Request, handler):
    try:
        return await handler(request)
    except AppError as exc:
        return error_response(exc)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        detail = exc.text if exc.text and not exc.text.startswith(f"{exc.status}:") else None
        headers = {k: v for k, v in exc.headers.items() if k.lower() in ("allow", "retry-after")}
        return problem(exc.status, exc.reason, detail, headers=headers)
    except Exception as exc:
        if is_bus_failure(exc):
            log.warning("bus unavailable: %s %s: %s", request.method, request.path, exc)
            return problem(
                503,
                "Service unavailable",
                "A backing service is temporarily unavailable; retry shortly.",
                code="unavailable",
                headers={"Retry-After": "5"},
            )
        log.exception("unhandled error")
        return problem(500, "Internal server error", "Something went wrong on our side.")


def _is_public(request: web.Request) -> bool:
    handler = request.match_info.handler
    spec = getattr(handler, "__endpoint__", None)
    if spec is not None:
        return spec.public
    return not request.path.startswith("/api/") or getattr(handler, "__public__", False)


@web.middleware
async def authenticate(request: web.Request, handler):
    if request.match_info.http_exception is not None:
        raise request.match_info.http_exception  # no such route / method: say so, not 401
    ctx = request.app[CONTEXT]
    principal: Principal | None = None
    header = request.headers.get("Authorization", "")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise Unauthorized("Use an 'Authorization: Bearer <token>' header.")
        principal = await accounts.authenticate(ctx, token.strip())
    elif ctx.settings.auth.session_cookie_name in request.cookies:
        session = await get_session(request)
        if "user_id" in session:
            family = session.get("family_id")
            candidate = Principal(
                uuid.UUID(session["user_id"]),
                session.get("username", ""),
                tuple(session.get("roles", ("user",))),
                parse_uuid(family) if isinstance(family, str) else None,
            )
            if await accounts.web_session_alive(ctx, candidate, session.get("family_id")):
                principal = candidate
            else:  # ended (logout elsewhere, password reset): drop the cookie, go on anonymous
                session.invalidate()
    if principal is not None:
        request[PRINCIPAL] = principal
        user_id_var.set(str(principal.user_id))
        await ctx.limit(f"api:{principal.user_id}", ctx.settings.rate_limits.api, "API requests")
    elif not _is_public(request):
        raise Unauthorized()
    return await handler(request)
