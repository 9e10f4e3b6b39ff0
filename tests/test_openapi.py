"""The OpenAPI document: a valid OpenAPI 3.1 document whose operations have unique, readable
operationIds, typed ids and descriptions, built once; and the browsable docs at /api/docs."""

from __future__ import annotations

import re
from typing import Any

import pytest
from aiohttp import web
from openapi_spec_validator import validate
from pydantic import BaseModel

from server.http import openapi
from server.http.endpoint import OPERATION_ID_RE, EndpointSpec, endpoint


async def fetch_document(client) -> dict[str, Any]:
    resp = await client.get("/api/openapi.json")
    assert resp.status == 200
    assert resp.content_type == "application/json"
    return await resp.json()


def operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(path, method, op) for path, ops in doc["paths"].items() for method, op in ops.items()]


def specs_by_operation_id(app: web.Application) -> dict[str, EndpointSpec]:
    specs = {}
    for route in app.router.routes():
        spec = getattr(route.handler, "__endpoint__", None)
        if spec is not None:
            specs[spec.operation_id] = spec
    return specs


async def test_the_document_is_a_valid_openapi_31_document(client):
    doc = await fetch_document(client)
    assert doc["openapi"] == "3.1.0"
    validate(doc)  # raises with the first problem (e.g. a dangling $ref)


async def test_every_ref_resolves_within_the_document(client):
    doc = await fetch_document(client)
    refs: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("$ref"), str):
                refs.append(node["$ref"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(doc)
    schemas = doc["components"]["schemas"]
    assert refs
    for ref in refs:
        assert ref.startswith("#/components/schemas/"), ref
        assert ref.rsplit("/", 1)[1] in schemas, ref
    # The query parameter that used to point at a missing #/$defs/Category.
    params = doc["paths"]["/api/notifications"]["get"]["parameters"]
    category = next(p for p in params if p["name"] == "category")
    assert {"$ref": "#/components/schemas/Category"} in category["schema"]["anyOf"]


async def test_operation_ids_are_unique_dotted_names(client):
    doc = await fetch_document(client)
    ids = [op["operationId"] for _, _, op in operations(doc)]
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)
    assert all(OPERATION_ID_RE.fullmatch(i) for i in ids), [
        i for i in ids if not OPERATION_ID_RE.fullmatch(i)
    ]
    paths = doc["paths"]
    assert paths["/api/auth/login"]["post"]["operationId"] == "auth.login"
    assert paths["/api/users/{ref}/follow"]["post"]["operationId"] == "users.follow"
    assert paths["/api/users/{ref}/mute"]["post"]["operationId"] == "users.mute"
    assert paths["/api/conversations/{id}/mute"]["post"]["operationId"] == "conversations.mute"
    assert paths["/api/conversations/{id}/messages"]["post"]["operationId"] == "messages.send"
    assert paths["/api/notifications"]["get"]["operationId"] == "notifications.list"


async def test_id_path_parameters_are_uuids_and_refs_say_what_they_take(client):
    doc = await fetch_document(client)
    seen_ids = seen_refs = 0
    for path, method, op in operations(doc):
        for param in op["parameters"]:
            if param["in"] != "path":
                continue
            name, schema = param["name"], param["schema"]
            assert param["required"] is True
            if name == "id" or name.endswith("_id"):
                seen_ids += 1
                assert schema == {"type": "string", "format": "uuid"}, (method, path, name)
            else:
                seen_refs += 1
                assert schema == {"type": "string"}, (method, path, name)
                assert param.get("description"), (method, path, name)
    assert seen_ids > 30 and seen_refs > 10
    profile = doc["paths"]["/api/users/{ref}"]["get"]["parameters"][0]
    assert "username" in profile["description"] and "UUID" in profile["description"]
    shop = doc["paths"]["/api/shops/{ref}"]["get"]["parameters"][0]
    assert "handle" in shop["description"]


async def test_every_operation_is_described_beyond_its_summary(client):
    doc = await fetch_document(client)
    for path, method, op in operations(doc):
        where = f"{method.upper()} {path}"
        assert op["summary"], where
        # Add a docstring to the handler (its first paragraph becomes the description).
        assert op.get("description") and op["description"] != op["summary"], where
        assert op["tags"], where
    assert doc["info"]["description"]
    assert all(tag.get("description") for tag in doc["tags"])
    schemas = doc["components"]["schemas"]
    for name in ("RegisterIn", "SessionOut", "UserOut", "SendIn", "MessageOut", "Page_UserOut_"):
        assert schemas[name].get("description"), name


async def test_main_request_bodies_carry_examples_that_validate(client):
    doc = await fetch_document(client)
    specs = specs_by_operation_id(client.app)
    by_id = {op["operationId"]: op for _, _, op in operations(doc)}
    schemas = doc["components"]["schemas"]
    for op_id in (
        "auth.register",
        "auth.login",
        "messages.send",
        "notifications.update_settings",
        "ingest.upsert_product",
    ):
        media = by_id[op_id]["requestBody"]["content"]["application/json"]
        schema = schemas[media["schema"]["$ref"].rsplit("/", 1)[1]]
        examples = list(schema.get("examples", []))
        examples += [example["value"] for example in media.get("examples", {}).values()]
        assert examples, op_id
        body_model = specs[op_id].body
        assert body_model is not None
        for example in examples:
            body_model.model_validate(example)  # a stale example fails here


async def test_the_document_is_built_once_and_served_from_cache(client, monkeypatch):
    first = await client.get("/api/openapi.json")
    body = await first.read()

    def rebuild(*args: Any, **kwargs: Any) -> dict[str, Any]:
        raise AssertionError("the document was rebuilt for a request")

    monkeypatch.setattr(openapi, "build_openapi", rebuild)
    second = await client.get("/api/openapi.json")
    assert second.status == 200
    assert await second.read() == body
    assert openapi.openapi_document(client.app) is openapi.openapi_document(client.app)


def test_two_operations_with_one_operation_id_are_refused():
    @endpoint("First", operation_id="things.get", tags=("things",))
    async def first(request: web.Request) -> dict:
        return {}

    @endpoint("Second", operation_id="things.get", tags=("things",))
    async def second(request: web.Request) -> dict:
        return {}

    app = web.Application()
    app.router.add_get("/api/things/a", first)
    app.router.add_get("/api/things/b", second)
    with pytest.raises(ValueError, match=r"things\.get"):
        openapi.build_openapi(app)


def test_operation_ids_must_be_dotted_names():
    with pytest.raises(ValueError, match="dotted"):

        @endpoint("Bad", operation_id="getThings")
        async def bad(request: web.Request) -> dict:
            return {}


def test_operation_id_and_description_defaults():
    class Body(BaseModel):
        name: str

    @endpoint("Make a thing", body=Body, tags=("things",))
    async def make_thing(request: web.Request, body: Body) -> dict:
        """Makes the thing, idempotently.

        Not this paragraph: it is for the code's readers."""
        return {}

    spec = make_thing.__endpoint__  # type: ignore[attr-defined]
    assert spec.operation_id == "things.make_thing"
    assert spec.description == "Makes the thing, idempotently."


# Browsable docs ----------------------------------------------------------------------------


async def test_docs_page_loads_the_document_with_local_assets_only(client):
    resp = await client.get("/api/docs")  # no token: public
    assert resp.status == 200
    assert resp.content_type == "text/html"
    html = await resp.text()
    assert "://" not in html  # nothing from a CDN
    scripts = re.findall(r'<script src="([^"]+)"', html)
    styles = re.findall(r'<link rel="stylesheet" href="([^"]+)"', html)
    assert "/api/docs/static/swagger-ui-bundle.js" in scripts
    assert "/api/docs/static/swagger-ui.css" in styles
    for url in scripts:
        asset = await client.get(url)
        assert asset.status == 200, url
        assert "javascript" in asset.content_type, (url, asset.content_type)
        assert len(await asset.read()) > 0
    for url in styles:
        asset = await client.get(url)
        assert asset.status == 200, url
        assert asset.content_type == "text/css"
    init = await (await client.get("/api/docs/init.js")).text()
    assert '"/api/openapi.json"' in init


async def test_the_bundled_swagger_ui_renders_openapi_31(client):
    # Swagger UI before 5.0 (e.g. the swagger-ui-bundle package) refuses 3.1 documents with
    # "Unable to render this definition".
    bundle = await (await client.get("/api/docs/static/swagger-ui-bundle.js")).read()
    assert b"isOAS31" in bundle


async def test_docs_serve_only_the_listed_assets(client):
    for name in ("swagger-initializer.js", "LICENSE", "..%2Fcore.py", "index.html"):
        resp = await client.get(f"/api/docs/static/{name}")
        assert resp.status == 404, name
    doc = await fetch_document(client)
    assert not any(path.startswith("/api/docs") for path in doc["paths"])
