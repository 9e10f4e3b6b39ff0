"""The OpenAPI 3.1 document, generated from the same pydantic models that validate requests."""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web
from pydantic import BaseModel, TypeAdapter
from pydantic.json_schema import models_json_schema

from server.http.endpoint import EndpointSpec, json_response

routes = web.RouteTableDef()

PROBLEM_SCHEMA = {
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {
            "type": "object",
            "additionalProperties": {"type": "array", "items": {"type": "string"}},
        },
    },
}
PARAM_RE = re.compile(r"{([^}:]+)(?::[^}]*)?}")


def _operations(app: web.Application) -> list[tuple[str, str, str, EndpointSpec]]:
    ops = []
    for route in app.router.routes():
        spec = getattr(route.handler, "__endpoint__", None)
        if spec is None or route.method == "HEAD":
            continue
        path = route.resource.canonical
        ops.append((path, route.method.lower(), route.handler.__name__, spec))
    return ops


def build_openapi(app: web.Application, title: str = "Nexgate API") -> dict[str, Any]:
    ops = _operations(app)
    models: set[type[BaseModel]] = set()
    for _, _, _, spec in ops:
        for model in (spec.body, spec.query, spec.response):
            if isinstance(model, type) and issubclass(model, BaseModel):
                models.add(model)
    keyed = [(m, "validation") for m in models] + [(m, "serialization") for m in models]
    refs, defs = models_json_schema(keyed, ref_template="#/components/schemas/{model}")
    schemas = dict(defs.get("$defs", {}))
    schemas["Problem"] = PROBLEM_SCHEMA

    paths: dict[str, dict[str, Any]] = {}
    for path, method, name, spec in ops:
        op: dict[str, Any] = {
            "operationId": f"{method}_{name}",
            "summary": spec.summary,
            "tags": list(spec.tags),
            "parameters": [],
        }
        for param in PARAM_RE.findall(path):
            op["parameters"].append(
                {"name": param, "in": "path", "required": True, "schema": {"type": "string"}}
            )
        if spec.query is not None:
            query_schema = spec.query.model_json_schema()
            required = set(query_schema.get("required", []))
            for field_name, field_schema in query_schema.get("properties", {}).items():
                op["parameters"].append(
                    {
                        "name": field_name,
                        "in": "query",
                        "required": field_name in required,
                        "schema": field_schema,
                    }
                )
        if spec.body is not None:
            op["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": refs[(spec.body, "validation")]}},
            }
        responses: dict[str, Any] = {}
        if spec.status == 204 or (spec.response is None and spec.status in (200, 204)):
            responses[str(spec.status)] = {"description": "Done"}
        elif spec.response is not None and (spec.response, "serialization") in refs:
            responses[str(spec.status)] = {
                "description": "Success",
                "content": {"application/json": {"schema": refs[(spec.response, "serialization")]}},
            }
        elif spec.response is not None:
            schema = TypeAdapter(spec.response).json_schema(
                ref_template="#/components/schemas/{model}"
            )
            responses[str(spec.status)] = {
                "description": "Success",
                "content": {"application/json": {"schema": schema}},
            }
        else:
            responses[str(spec.status)] = {
                "description": "Success",
                "content": {"application/json": {"schema": {"type": "object"}}},
            }
        problem_content = {
            "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
        }
        for status in sorted({400, 401, 413, 429, *spec.errors}):
            responses[str(status)] = {"description": "Problem", "content": problem_content}
        responses["default"] = {"description": "Problem", "content": problem_content}
        op["responses"] = responses
        if spec.extra.get("security"):
            op["security"] = spec.extra["security"]
        elif not spec.public:
            op["security"] = [{"bearer": []}]
        paths.setdefault(path, {})[method] = op

    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": "1.0.0"},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                "serviceToken": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "X-Service-Token",
                    "description": "Commerce services only (config commerce.service_token).",
                },
            },
        },
    }


def _openapi_handler(request: web.Request) -> web.Response:
    return json_response(build_openapi(request.app))


@routes.get("/api/openapi.json")
async def openapi(request: web.Request) -> web.Response:
    return _openapi_handler(request)


openapi.__public__ = True  # type: ignore[attr-defined]
