"""The OpenAPI 3.1 document, generated from the same pydantic models that validate requests, and
the browsable docs page (Swagger UI, served from the `swagger-ui-py` package: no CDN)."""

from __future__ import annotations

import functools
import importlib.util
import re
import weakref
from pathlib import Path
from typing import Any

from aiohttp import web
from pydantic import BaseModel, TypeAdapter
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from server.http.endpoint import EndpointSpec, dumps

routes = web.RouteTableDef()

REF_TEMPLATE = "#/components/schemas/{model}"
PROBLEM_SCHEMA = {
    "type": "object",
    "description": "An error, as application/problem+json (RFC 9457).",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {
            "type": "object",
            "description": "Validation failures: the field (dotted path) -> its messages.",
            "additionalProperties": {"type": "array", "items": {"type": "string"}},
        },
    },
}
API_DESCRIPTION = (
    "The HTTP API of the Nexgate server. Authenticate with `Authorization: Bearer <access "
    "token>` (from `auth.login` or `auth.register`; refreshed with `auth.refresh_token`). Errors "
    "are `application/problem+json`; lists take `?limit=&cursor=` and answer `next_cursor`. "
    "Real-time events travel over the gateway (`/api/gateway/ws`, see protocol/PROTOCOL.md)."
)
TAG_DESCRIPTIONS = {
    "auth": "Accounts: register, log in and out, tokens, password reset.",
    "users": "Profiles and the social graph: follow, block, mute, follow requests.",
    "notifications": "Your notifications and notification preferences.",
    "messaging": "Direct conversations and messages, receipts, reactions, search.",
    "commerce": "Products, shops, events, installment plans and buy-together groups.",
    "commerce-ingest": "For the commerce services only (service token): versioned upserts.",
    "gateway": "The real-time gateway and its HTTP fallbacks (long-poll, SSE).",
    "posts": "Posts: create, drafts, edit history, delete, collaboration, commerce cards.",
    "hashtags": "Hashtags: counts, feeds, following, trending.",
    "feeds": "Feeds: your home feed and explore.",
    "interactions": "Likes, bookmarks and collections, hiding posts.",
    "comments": "Comments on posts, nested replies, comment likes.",
    "polls": "Votes and live results of polls in posts.",
    "media": "Image and video uploads (multipart; resumable over tus at /api/media/uploads).",
    "search": "Search users, posts, hashtags and commerce-linked posts; your search history.",
    "lists": "Lists of users (private or public) and their feeds.",
    "filters": "Muted words: keyword filters over your feeds and search.",
}
PARAM_RE = re.compile(r"{([^}:]+)(?::[^}]*)?}")


def _operations(app: web.Application) -> list[tuple[str, str, EndpointSpec]]:
    ops = []
    for route in app.router.routes():
        spec = getattr(route.handler, "__endpoint__", None)
        if spec is None or route.method == "HEAD" or route.resource is None:
            continue
        ops.append((route.resource.canonical, route.method.lower(), spec))
    return ops


def _is_model(value: Any) -> bool:
    return isinstance(value, type) and issubclass(value, BaseModel)


def _qualname(model: type[BaseModel]) -> str:
    return f"{model.__module__}.{model.__qualname__}"


def _ref_name(ref: dict[str, Any]) -> str:
    return ref["$ref"].rsplit("/", 1)[1]


def _path_parameter(name: str, spec: EndpointSpec) -> dict[str, Any]:
    param: dict[str, Any] = {"name": name, "in": "path", "required": True}
    if name in spec.path_params:
        param["description"] = spec.path_params[name]
        param["schema"] = {"type": "string"}
    elif name == "id" or name.endswith("_id"):
        param["schema"] = {"type": "string", "format": "uuid"}
    else:
        param["schema"] = {"type": "string"}
    return param


def build_openapi(app: web.Application, title: str = "Nexgate API") -> dict[str, Any]:
    """The document for every `@endpoint` route of `app`. Raises ValueError when two operations
    share an operationId."""
    ops = _operations(app)
    seen: dict[str, str] = {}
    for path, method, spec in ops:
        where = f"{method.upper()} {path}"
        if spec.operation_id in seen:
            raise ValueError(
                f"operationId {spec.operation_id!r} is used by {seen[spec.operation_id]} "
                f"and {where}: give one of them another operation_id"
            )
        seen[spec.operation_id] = where

    # Request models as they validate, responses as they serialize: one components entry per
    # model unless the two differ (then pydantic names them Model-Input and Model-Output).
    inputs = {m for _, _, spec in ops for m in (spec.body, spec.query) if m is not None}
    outputs = {spec.response for _, _, spec in ops if _is_model(spec.response)}
    # A route answering another status too (e.g. register: 201 signed in, or 202 verification
    # sent, by configuration) names it in extra["also"] = {status: response model}.
    outputs |= {m for _, _, spec in ops for m in spec.extra.get("also", {}).values()}
    query_models = {spec.query for _, _, spec in ops if spec.query is not None}
    keyed: list[tuple[type[BaseModel], JsonSchemaMode]]
    keyed = [(m, "validation") for m in sorted(inputs, key=_qualname)]
    keyed += [(m, "serialization") for m in sorted(outputs, key=_qualname)]
    refs, defs = models_json_schema(keyed, ref_template=REF_TEMPLATE)
    schemas: dict[str, Any] = dict(defs.get("$defs", {}))
    # Query models are documented as one parameter per field, not as a schema of their own;
    # what their fields refer to (enums, nested models) stays in components.
    query_fields = {m: schemas[_ref_name(refs[(m, "validation")])] for m in query_models}
    bodies = {spec.body for _, _, spec in ops}
    for model in query_models - bodies - outputs:
        schemas.pop(_ref_name(refs[(model, "validation")]), None)
    schemas["Problem"] = PROBLEM_SCHEMA

    paths: dict[str, dict[str, Any]] = {}
    for path, method, spec in ops:
        op: dict[str, Any] = {
            "operationId": spec.operation_id,
            "summary": spec.summary,
            "description": spec.description,
            "tags": list(spec.tags),
            "parameters": [_path_parameter(name, spec) for name in PARAM_RE.findall(path)],
        }
        if spec.query is not None:
            query_schema = query_fields[spec.query]
            required = set(query_schema.get("required", []))
            for field_name, field_schema in query_schema.get("properties", {}).items():
                schema = dict(field_schema)
                param = {"name": field_name, "in": "query", "required": field_name in required}
                if "description" in schema:
                    param["description"] = schema.pop("description")
                op["parameters"].append({**param, "schema": schema})
        if spec.body is not None:
            media: dict[str, Any] = {"schema": refs[(spec.body, "validation")]}
            if spec.examples:
                media["examples"] = {
                    re.sub(r"\W+", "_", label.lower()).strip("_"): {"summary": label, "value": v}
                    for label, v in spec.examples.items()
                }
            op["requestBody"] = {"required": True, "content": {"application/json": media}}
        responses: dict[str, Any] = {}
        if spec.status == 204 or (spec.response is None and spec.status in (200, 204)):
            responses[str(spec.status)] = {"description": "Done"}
        elif spec.response is not None and (spec.response, "serialization") in refs:
            responses[str(spec.status)] = {
                "description": "Success",
                "content": {"application/json": {"schema": refs[(spec.response, "serialization")]}},
            }
        elif spec.response is not None:
            schema = TypeAdapter(spec.response).json_schema(ref_template=REF_TEMPLATE)
            for name, sub in schema.pop("$defs", {}).items():
                if schemas.setdefault(name, sub) != sub:
                    raise ValueError(f"two different schemas are named {name!r} ({path})")
            responses[str(spec.status)] = {
                "description": "Success",
                "content": {"application/json": {"schema": schema}},
            }
        else:
            responses[str(spec.status)] = {
                "description": "Success",
                "content": {"application/json": {"schema": {"type": "object"}}},
            }
        for status, model in spec.extra.get("also", {}).items():
            responses[str(status)] = {
                "description": "Success",
                "content": {"application/json": {"schema": refs[(model, "serialization")]}},
            }
        problem_content = {
            "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
        }
        body_errors = (415,) if spec.body is not None else ()  # a body that is not JSON
        for status in sorted({400, 401, 413, 429, *body_errors, *spec.errors}):
            responses[str(status)] = {"description": "Problem", "content": problem_content}
        responses["default"] = {"description": "Problem", "content": problem_content}
        op["responses"] = responses
        if spec.extra.get("security"):
            op["security"] = spec.extra["security"]
        elif not spec.public:
            op["security"] = [{"bearer": []}]
        paths.setdefault(path, {})[method] = op

    used_tags = sorted({tag for _, _, spec in ops for tag in spec.tags})
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": "1.0.0", "description": API_DESCRIPTION},
        "tags": [
            {
                "name": tag,
                **({"description": TAG_DESCRIPTIONS[tag]} if tag in TAG_DESCRIPTIONS else {}),
            }
            for tag in used_tags
        ],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                "streamTicket": {
                    "type": "apiKey",
                    "in": "query",
                    "name": "ticket",
                    "description": "SSE only: a single-use ticket from POST /api/gateway/tickets "
                    "(an EventSource cannot send a header).",
                },
                "serviceToken": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "X-Service-Token",
                    "description": "Commerce services only (config commerce.service_token).",
                },
            },
        },
    }


# The serialized document, built once per application: the routes cannot change once the app
# runs. Keyed weakly so test apps do not pile up.
_DOCUMENTS: weakref.WeakKeyDictionary[web.Application, bytes] = weakref.WeakKeyDictionary()


def openapi_document(app: web.Application) -> bytes:
    """The document of `app` as JSON bytes, built on first use and kept."""
    document = _DOCUMENTS.get(app)
    if document is None:
        document = _DOCUMENTS[app] = dumps(build_openapi(app))
    return document


async def build_on_startup(app: web.Application) -> None:
    """An `on_startup` hook: build the document before the first request (and fail at boot,
    not on a request, if two operations share an operationId)."""
    openapi_document(app)


@routes.get("/api/openapi.json")
async def openapi(request: web.Request) -> web.Response:
    return web.Response(body=openapi_document(request.app), content_type="application/json")


# A marker the auth middleware reads off handlers without an endpoint spec (mypy cannot see
# attributes set on a function).
openapi.__public__ = True  # type: ignore[union-attr]


# Browsable docs ----------------------------------------------------------------------------

DOCS_STATIC = "/api/docs/static"
# The Swagger UI files the page loads: nothing else of the package is served.
DOCS_ASSETS = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "favicon-32x32.png": "image/png",
    "favicon-16x16.png": "image/png",
}
DOCS_INIT_JS = b"""window.ui = SwaggerUIBundle({
  url: "/api/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
  displayOperationId: true,
  displayRequestDuration: true,
});
"""
DOCS_HTML = f"""<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Nexgate API</title>
  <link rel="stylesheet" href="{DOCS_STATIC}/swagger-ui.css">
  <link rel="icon" type="image/png" sizes="32x32" href="{DOCS_STATIC}/favicon-32x32.png">
  <link rel="icon" type="image/png" sizes="16x16" href="{DOCS_STATIC}/favicon-16x16.png">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="{DOCS_STATIC}/swagger-ui-bundle.js"></script>
  <script src="/api/docs/init.js"></script>
</body>
</html>
""".encode()


@functools.cache
def swagger_ui_dir() -> Path | None:
    """The static files of the `swagger-ui-py` package (found without importing it)."""
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "static"


@routes.get("/api/docs")
async def docs(request: web.Request) -> web.Response:
    return web.Response(body=DOCS_HTML, content_type="text/html", charset="utf-8")


@routes.get("/api/docs/init.js")
async def docs_init(request: web.Request) -> web.Response:
    return web.Response(body=DOCS_INIT_JS, content_type="text/javascript", charset="utf-8")


@routes.get(DOCS_STATIC + "/{name}")
async def docs_asset(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    folder = swagger_ui_dir()
    if name not in DOCS_ASSETS or folder is None or not (folder / name).is_file():
        raise web.HTTPNotFound()
    return web.FileResponse(
        folder / name,
        headers={"Content-Type": DOCS_ASSETS[name], "Cache-Control": "public, max-age=86400"},
    )


for _handler in (docs, docs_init, docs_asset):
    _handler.__public__ = True  # type: ignore[union-attr]  # the marker, as for openapi above
