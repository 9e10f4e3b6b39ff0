"""`@endpoint`: validates query and body with pydantic models, serialises the result, and
records what the OpenAPI document says about the route."""

from __future__ import annotations

import functools
import inspect
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import orjson
from aiohttp import web
from pydantic import BaseModel, ValidationError

from server.app_keys import CONTEXT, PRINCIPAL
from server.domain.auth_tokens import Principal
from server.domain.context import Context
from server.errors import BadRequest, Unauthorized, UnsupportedMediaType, ValidationFailed
from server.http.web_security import client_address
from server.ids import parse_uuid

Handler = Callable[..., Awaitable[Any]]

# Dotted names, read as `resource.action`: "users.follow", "messages.send".
OPERATION_ID_RE = re.compile(r"[a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)+")


@dataclass
class EndpointSpec:
    summary: str
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    response: Any = None
    status: int = 200
    public: bool = False
    tags: tuple[str, ...] = ()
    errors: tuple[int, ...] = ()
    operation_id: str = ""
    description: str = ""
    # Path parameter name -> what it holds, for the ones that are not UUIDs (e.g. a username).
    path_params: dict[str, str] = field(default_factory=dict)
    # Request body examples shown in the docs: a label -> an example payload.
    examples: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


def first_paragraph(text: str | None) -> str:
    """The first paragraph of a docstring, on one line."""
    if not text:
        return ""
    paragraph = inspect.cleandoc(text).split("\n\n", 1)[0]
    return " ".join(paragraph.split())


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    if isinstance(value, bytes):
        return None
    raise TypeError(f"cannot serialise {type(value).__name__}")


def dumps(value: Any) -> bytes:
    return orjson.dumps(value, default=_default, option=orjson.OPT_NON_STR_KEYS)


def json_response(value: Any, status: int = 200) -> web.Response:
    return web.Response(body=dumps(value), status=status, content_type="application/json")


def validation_errors(exc: ValidationError) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    for err in exc.errors():
        loc = ".".join(str(part) for part in err["loc"]) or "body"
        errors.setdefault(loc, []).append(err["msg"])
    return errors


def _raise_validation(exc: ValidationError) -> None:
    errors = validation_errors(exc)
    first = next(iter(errors.items()))
    raise ValidationFailed(f"{first[0]}: {first[1][0]}", errors=errors) from None


def _is_json(content_type: str) -> bool:
    return content_type == "application/json" or (
        content_type.startswith("application/") and content_type.endswith("+json")
    )


async def read_body(request: web.Request, model: type[BaseModel]) -> BaseModel:
    raw = await request.read()
    # JSON only when declared JSON: a browser sends text/plain (and form encodings) from any
    # page without a CORS preflight, so parsing those anyway lets other sites post (finding 9).
    if raw and not _is_json(request.content_type):
        raise UnsupportedMediaType("Send the body as JSON with 'Content-Type: application/json'.")
    if not raw:
        data: Any = {}
    else:
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise BadRequest("The request body is not valid JSON.") from None
    if _has_nul(data):
        raise ValidationFailed("Text may not contain NUL characters.", errors={"body": ["NUL"]})
    if not isinstance(data, dict):
        raise ValidationFailed(
            "The request body must be a JSON object.", errors={"body": ["must be an object"]}
        )
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        _raise_validation(exc)
        raise


def _has_nul(value: Any) -> bool:
    """PostgreSQL text cannot hold U+0000; refuse it at the edge instead of failing in SQL."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


def check_path(request: web.Request) -> None:
    """Path segments reach SQL too (usernames, shop handles): refuse NUL there as well."""
    for name, value in request.match_info.items():
        if "\x00" in value:
            raise ValidationFailed.field(name, "may not contain NUL characters")


def read_query(request: web.Request, model: type[BaseModel]) -> BaseModel:
    if _has_nul(dict(request.query)):
        raise ValidationFailed("Text may not contain NUL characters.", errors={"query": ["NUL"]})
    try:
        return model.model_validate(dict(request.query))
    except ValidationError as exc:
        _raise_validation(exc)
        raise


def endpoint(
    summary: str,
    *,
    body: type[BaseModel] | None = None,
    query: type[BaseModel] | None = None,
    response: Any = None,
    status: int = 200,
    public: bool = False,
    tags: tuple[str, ...] = (),
    errors: tuple[int, ...] = (),
    operation_id: str | None = None,
    description: str | None = None,
    path_params: dict[str, str] | None = None,
    examples: dict[str, Any] | None = None,
    also: dict[int, type[BaseModel]] | None = None,
) -> Callable[[Handler], Handler]:
    """Wrap `handler(request, *, query=..., body=...)`; it returns a JSON-able value (sent with
    `status`), None (204) or a ready web.StreamResponse.

    For the OpenAPI document: `operation_id` is a dotted name ("messages.send"; default
    "<first tag>.<handler name>"), `description` defaults to the first paragraph of the handler's
    docstring (else the summary), `path_params` describes path parameters that are not UUIDs
    (those named `id` or `*_id` are documented as UUIDs), and `examples` are request bodies
    shown in the docs (for body models whose own schema carries none); `also` documents other
    success answers the handler may send itself ({status: response model})."""

    def wrap(fn: Handler) -> Handler:
        op_id = operation_id or ".".join(
            part.replace("-", "_") for part in (tags[0] if tags else "api", fn.__name__)
        )
        if not OPERATION_ID_RE.fullmatch(op_id):
            raise ValueError(f"operation_id {op_id!r} is not a dotted name like 'users.follow'")
        spec = EndpointSpec(
            summary,
            body=body,
            query=query,
            response=response,
            status=status,
            public=public,
            tags=tags,
            errors=errors,
            operation_id=op_id,
            description=description or first_paragraph(fn.__doc__) or summary,
            path_params=dict(path_params or {}),
            examples=dict(examples or {}),
            extra={"also": dict(also)} if also else {},
        )

        @functools.wraps(fn)
        async def handler(request: web.Request) -> web.StreamResponse:
            check_path(request)
            kwargs: dict[str, Any] = {}
            if query is not None:
                kwargs["query"] = read_query(request, query)
            if body is not None:
                kwargs["body"] = await read_body(request, body)
            result = await fn(request, **kwargs)
            if isinstance(result, web.StreamResponse):
                return result
            if result is None:
                return web.Response(status=204)
            return json_response(result, status)

        # The spec rides on the handler (middlewares and the OpenAPI builder read it); mypy
        # cannot see attributes set on a function.
        handler.__endpoint__ = spec  # type: ignore[attr-defined]
        return handler

    return wrap


def context(request: web.Request) -> Context:
    """The domain Context every action takes."""
    return request.app[CONTEXT]


def principal(request: web.Request) -> Principal:
    user = request.get(PRINCIPAL)
    if user is None:
        raise Unauthorized()
    return user


def path_id(request: web.Request, name: str = "id") -> uuid.UUID:
    value = parse_uuid(request.match_info[name])
    if value is None:
        raise ValidationFailed.field(name, "must be a UUID")
    return value


def client_ip(request: web.Request) -> str:
    """The client's address, for per-address limits and logs: the TCP peer, or what a trusted
    proxy (http.trusted_proxies) says is the client (server/http/web_security.py)."""
    return client_address(request)
