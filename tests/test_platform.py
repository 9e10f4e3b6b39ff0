"""Cross-cutting behaviour: problem+json errors, limits, request ids, health, metrics, OpenAPI."""

from __future__ import annotations

import uuid

import pytest
from aiohttp import web

from server.app import create_app
from server.bus.ratelimit import MemoryRateLimiter, RedisRateLimiter
from server.config import RateLimit
from tests.helpers import expect_problem, make_settings


async def test_malformed_json_is_400_problem(client):
    resp = await client.post(
        "/api/auth/register", data=b"{not json", headers={"Content-Type": "application/json"}
    )
    body = await expect_problem(resp, 400)
    assert "JSON" in body["detail"]


async def test_non_object_body_and_wrong_types_are_422(client):
    await expect_problem(await client.post("/api/auth/login", json=[1, 2]), 422)
    body = await expect_problem(
        await client.post("/api/auth/login", json={"login": 5, "password": None}), 422
    )
    assert {"login", "password"} <= set(body["errors"])


async def test_oversized_body_is_413_problem(client):
    resp = await client.post("/api/auth/login", data=b"x" * (1_048_576 + 10))
    await expect_problem(resp, 413)


async def test_unknown_route_and_method_are_problems(client, alice):
    await expect_problem(await client.get("/api/nope", headers=alice.auth), 404)
    resp = await client.put("/api/auth/login", json={})
    await expect_problem(resp, 405)
    assert "POST" in resp.headers["Allow"]


async def test_request_id_is_echoed_or_generated(client):
    resp = await client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert resp.headers["X-Request-ID"] == "abc-123"
    generated = await client.get("/healthz")
    assert len(generated.headers["X-Request-ID"]) == 32


async def test_health_and_readiness(client):
    assert (await (await client.get("/healthz")).json()) == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status == 200 and (await ready.json())["status"] == "ready"


async def test_metrics_count_requests_by_route_and_status(client, alice):
    await client.get("/api/users/alice", headers=alice.auth)
    text = await (await client.get("/metrics")).text()
    assert 'nexgate_http_requests_total{method="GET",route="/api/users/{ref}",status="200"}' in text
    assert "nexgate_http_request_duration_seconds_bucket" in text
    assert "nexgate_db_pool_in_use" in text


async def test_openapi_describes_every_api_route(client):
    doc = await (await client.get("/api/openapi.json")).json()
    assert doc["openapi"].startswith("3.1")
    app_routes = {
        (route.resource.canonical, route.method.lower())
        for route in client.app.router.routes()
        if route.resource.canonical.startswith("/api/")
        and route.method != "HEAD"
        and getattr(route.handler, "__endpoint__", None) is not None
    }
    documented = {(path, method) for path, ops in doc["paths"].items() for method in ops}
    assert app_routes <= documented
    register = doc["paths"]["/api/auth/register"]["post"]
    schema_ref = register["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    schema = doc["components"]["schemas"][schema_ref.rsplit("/", 1)[1]]
    assert {"username", "email", "password"} <= set(schema["properties"])


async def test_api_rate_limit_per_user(aiohttp_client, clean_db, tmp_path, make_user):
    settings = make_settings(clean_db, tmp_path, rate_limits={"api": "5/3600"})
    client = await aiohttp_client(create_app(settings))
    resp = await client.post(
        "/api/auth/register",
        json={"username": "limited", "email": "l@example.com", "password": "longenough"},
    )
    token = (await resp.json())["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    client.session.cookie_jar.clear()
    statuses = [(await client.get("/api/users/limited", headers=headers)).status for _ in range(6)]
    assert statuses[:5] == [200] * 5
    limited = await client.get("/api/users/limited", headers=headers)
    await expect_problem(limited, 429)
    assert int(limited.headers["Retry-After"]) >= 1


@pytest.mark.parametrize("engine", ["memory", "redis"])
async def test_rate_limiter_engines_agree(engine, request):
    if engine == "redis":
        import redis.asyncio as redis

        url = request.getfixturevalue("redis_url")
        client = redis.from_url(url)
        limiter = RedisRateLimiter(client, prefix=f"test:{uuid.uuid4().hex}:")
    else:
        limiter = MemoryRateLimiter()
    limit = RateLimit(count=3, window_s=60)
    results = [await limiter.hit("k", limit) for _ in range(4)]
    assert results[:3] == [0, 0, 0] and 0 < results[3] <= 61
    assert await limiter.hit("other", limit) == 0
    await limiter.reset("k")
    assert await limiter.hit("k", limit) == 0
    if engine == "redis":
        await client.aclose()


def test_cli_help_lists_commands(capsys):
    from server.cli import main

    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "serve" in out and "migrate" in out


def test_create_app_is_an_application(settings):
    assert isinstance(create_app(settings), web.Application)


async def test_nul_in_a_path_segment_is_422_not_500(client, alice):
    for method, path in (
        ("GET", "/api/users/a%00b"),
        ("GET", "/api/users/%00/followers"),
        ("POST", "/api/users/a%00b/follow"),
        ("POST", "/api/users/a%00b/block"),
        ("GET", "/api/shops/a%00b"),
    ):
        resp = await client.request(method, path, headers=alice.auth)
        body = await expect_problem(resp, 422)
        assert "NUL" in body["detail"]
