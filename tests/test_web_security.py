"""Browser-facing rules over real HTTP (the browser itself: tests/test_web_browser.py): JSON
bodies only as JSON (415), writes refused from origins that are neither ours nor listed
(403), CORS for the listed origins, the client address behind trusted proxies, SSE stream
tickets and the `resync` event."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from server.config import load_settings
from tests.gateway_support import publish, sse_event
from tests.helpers import expect_problem

WEB_APP = "https://app.example.com"
pytestmark = pytest.mark.app_settings(http={"allowed_origins": [WEB_APP]})


def own_origin(client) -> str:
    return str(client.make_url("")).rstrip("/")


# JSON only as JSON -------------------------------------------------------------------------


async def test_a_json_endpoint_refuses_a_body_that_is_not_declared_json(client, alice):
    body = orjson.dumps({"login": "alice", "password": alice.password})
    for content_type in ("text/plain", "application/x-www-form-urlencoded", None):
        headers = {"Content-Type": content_type} if content_type else {}
        resp = await client.post("/api/auth/login", data=body, headers=headers)
        problem = await expect_problem(resp, 415)
        assert problem["type"].endswith("/unsupported_media_type")
        assert "application/json" in problem["detail"]
    assert "nexgate_session" not in {c.key for c in client.session.cookie_jar}
    for content_type in ("application/json", "application/json; charset=utf-8"):
        resp = await client.post(
            "/api/auth/login", data=body, headers={"Content-Type": content_type}
        )
        assert resp.status == 200, await resp.text()


async def test_a_bodyless_write_needs_no_content_type(client, alice, bob):
    resp = await client.post("/api/users/bob/follow", headers=alice.auth)
    assert resp.status < 300, await resp.text()


# The origin check --------------------------------------------------------------------------


async def test_writes_from_an_unlisted_origin_are_refused_reads_are_not(client, alice, bob):
    def create(**headers: str):
        return client.post(
            "/api/conversations", json={"user_id": bob.id}, headers={**alice.auth, **headers}
        )

    for headers in (
        {"Origin": "http://127.0.0.1:1"},  # a sibling origin: same host, another port
        {"Origin": "https://evil.example"},
        {"Origin": "null"},  # sandboxed frames, file: pages
        {"Sec-Fetch-Site": "same-site"},  # a browser that sent no Origin
    ):
        problem = await expect_problem(await create(**headers), 403)
        assert problem["type"].endswith("/origin_not_allowed")
    conversations = await client.get("/api/conversations", headers=alice.auth)
    assert (await conversations.json())["items"] == []
    for headers in (
        {"Origin": own_origin(client)},
        {"Origin": WEB_APP},
        {"Sec-Fetch-Site": "same-origin"},
        {},  # not a browser: no Origin at all
    ):
        assert (await create(**headers)).status == 200
    read = await client.get(
        "/api/conversations", headers={**alice.auth, "Origin": "https://evil.example"}
    )
    assert read.status == 200 and "Access-Control-Allow-Origin" not in read.headers


async def test_a_login_from_an_unlisted_origin_sets_no_cookie(client, alice):
    resp = await client.post(
        "/api/auth/login",
        json={"login": "alice", "password": alice.password},
        headers={"Origin": "http://127.0.0.1:1"},
    )
    await expect_problem(resp, 403)
    assert "Set-Cookie" not in resp.headers


# CORS ---------------------------------------------------------------------------------------


def preflight(client, origin: str, method: str = "POST"):
    return client.options(
        "/api/conversations",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )


async def test_a_listed_origin_gets_its_preflight_answered(client):
    resp = await preflight(client, WEB_APP)
    assert resp.status == 204
    assert resp.headers["Access-Control-Allow-Origin"] == WEB_APP
    assert resp.headers["Access-Control-Allow-Credentials"] == "true"
    assert "POST" in resp.headers["Access-Control-Allow-Methods"]
    allowed = resp.headers["Access-Control-Allow-Headers"].lower()
    assert "authorization" in allowed and "content-type" in allowed
    assert "Origin" in resp.headers["Vary"]


async def test_an_unlisted_origin_gets_no_cors_headers(client, alice):
    resp = await preflight(client, "https://evil.example")
    await expect_problem(resp, 403)
    assert "Access-Control-Allow-Origin" not in resp.headers
    assert "Access-Control-Allow-Credentials" not in resp.headers
    # A plain OPTIONS (no preflight) is still not a method of the route.
    await expect_problem(await client.options("/api/conversations"), 405)


async def test_responses_to_a_listed_origin_echo_it_errors_included(client, alice):
    ok = await client.get("/api/conversations", headers={**alice.auth, "Origin": WEB_APP})
    assert ok.status == 200
    assert ok.headers["Access-Control-Allow-Origin"] == WEB_APP
    assert ok.headers["Access-Control-Allow-Credentials"] == "true"
    assert "X-Request-ID" in ok.headers["Access-Control-Expose-Headers"]
    assert "Origin" in ok.headers["Vary"]
    # The app can read why it failed.
    denied = await client.get("/api/conversations", headers={"Origin": WEB_APP})
    await expect_problem(denied, 401)
    assert denied.headers["Access-Control-Allow-Origin"] == WEB_APP
    # Without an Origin nothing is echoed, but caches still keep the variants apart.
    plain = await client.get("/api/conversations", headers=alice.auth)
    assert "Access-Control-Allow-Origin" not in plain.headers
    assert "Origin" in plain.headers["Vary"]


@pytest.mark.parametrize("overrides", [{"http": {"allowed_origins": []}}])
async def test_by_default_only_the_own_origin_is_trusted(client, alice, bob):
    await expect_problem(await preflight(client, WEB_APP), 403)
    resp = await client.post(
        "/api/conversations",
        json={"user_id": bob.id},
        headers={**alice.auth, "Origin": WEB_APP},
    )
    await expect_problem(resp, 403)
    same = await client.post(
        "/api/conversations",
        json={"user_id": bob.id},
        headers={**alice.auth, "Origin": own_origin(client)},
    )
    assert same.status == 200 and "Vary" not in same.headers


def test_origins_and_proxies_are_checked_when_settings_load():
    settings = load_settings(
        env={
            "NEXGATE_HTTP_ALLOWED_ORIGINS": "https://A.example.com/, http://localhost:3000",
            "NEXGATE_HTTP_TRUSTED_PROXIES": "10.0.0.0/8, ::1",
        }
    )
    assert settings.http.allowed_origins == ["https://a.example.com", "http://localhost:3000"]
    assert settings.http.trusted_proxies == ["10.0.0.0/8", "::1"]
    for bad in ("*", "app.example.com", "https://app.example.com/path", "ftp://x"):
        with pytest.raises(ValueError, match="origin"):
            load_settings(env={}, http={"allowed_origins": [bad]})
    with pytest.raises(ValueError, match="CIDR"):
        load_settings(env={}, http={"trusted_proxies": ["proxy.internal"]})


# Trusted proxies -----------------------------------------------------------------------------

# Two failed logins per address: the third from one address is 429, another address is not.
LOGIN_LIMIT = {"rate_limits": {"login_per_ip": "2/3600"}}


async def login_statuses(client, headers_list: list[dict[str, str]]) -> list[int]:
    statuses = []
    for n, headers in enumerate(headers_list):
        resp = await client.post(
            "/api/auth/login", json={"login": f"nobody{n}", "password": "wrong"}, headers=headers
        )
        statuses.append(resp.status)
    return statuses


@pytest.mark.parametrize(
    "overrides", [{**LOGIN_LIMIT, "http": {"trusted_proxies": ["127.0.0.1", "10.0.0.0/8"]}}]
)
async def test_behind_a_trusted_proxy_the_forwarded_client_counts(client):
    xff = "X-Forwarded-For"
    statuses = await login_statuses(
        client,
        [
            {xff: "203.0.113.7"},
            # The client's own claim (left) is not believed; the hop the proxies saw is.
            {xff: "198.51.100.1, 203.0.113.7"},
            {xff: "192.0.2.99, 203.0.113.7, 10.1.2.3"},  # through a second trusted proxy
            {xff: "203.0.113.8"},
            {"Forwarded": 'for="203.0.113.8:4711";proto=https'},
            {"Forwarded": "for=203.0.113.8"},
            {"Forwarded": 'for="[2001:db8::1]:443"'},
        ],
    )
    assert statuses == [401, 401, 429, 401, 401, 429, 401]


@pytest.mark.parametrize(
    "overrides", [{**LOGIN_LIMIT, "http": {"trusted_proxies": ["10.0.0.0/8"]}}]
)
async def test_an_untrusted_peer_cannot_pick_its_address(client):
    # The test client's peer, 127.0.0.1, is not a trusted proxy: its headers are ignored.
    statuses = await login_statuses(
        client,
        [
            {"X-Forwarded-For": "203.0.113.1"},
            {"X-Forwarded-For": "203.0.113.2"},
            {"Forwarded": "for=203.0.113.3"},
        ],
    )
    assert statuses == [401, 401, 429]


# Stream tickets and resync ---------------------------------------------------------------------


async def ticket(client, user) -> str:
    resp = await client.post("/api/gateway/tickets", headers=user.auth)
    assert resp.status == 201, await resp.text()
    body = await resp.json()
    assert body["expires_in"] == 30
    return body["ticket"]


async def test_a_stream_ticket_opens_one_stream(client, alice, bus_engine):
    await expect_problem(await client.post("/api/gateway/tickets"), 401)
    first = await ticket(client, alice)
    async with client.get("/api/gateway/sse", params={"ticket": first}) as resp:
        assert resp.status == 200
        await asyncio.sleep(0.1)
        await publish(client, [alice.id], "test.ticket", {"n": 1})
        event = await sse_event(resp)
        assert orjson.loads(event["data"])["t"] == "test.ticket"
    again = await client.get("/api/gateway/sse", params={"ticket": first})
    assert "already used" in (await expect_problem(again, 401))["detail"]
    bogus = await client.get("/api/gateway/sse", params={"ticket": "x" * 43})
    await expect_problem(bogus, 401)
    await expect_problem(await client.get("/api/gateway/sse"), 401)


@pytest.mark.parametrize("overrides", [{"gateway": {"stream_ticket_ttl_s": 0.3}}])
async def test_a_stream_ticket_expires(client, alice):
    issued = await client.post("/api/gateway/tickets", headers=alice.auth)
    late = (await issued.json())["ticket"]
    await asyncio.sleep(0.5)
    await expect_problem(await client.get("/api/gateway/sse", params={"ticket": late}), 401)


async def test_an_event_source_past_the_log_gets_a_resync_event(client, alice):
    for n in range(3):
        await publish(client, [alice.id], "test.n", {"n": n})
    headers = {**alice.auth, "Accept": "text/event-stream"}
    async with client.get("/api/gateway/sse", params={"after": 9}, headers=headers) as resp:
        assert resp.status == 200
        event = await sse_event(resp)
        assert event["event"] == "resync"
        reason = orjson.loads(event["data"])
        assert reason["code"] == "invalid_session" and reason["seq"] == 3
        assert "refetch" in reason["detail"]
        assert await resp.content.read() == b""  # and the stream ends
    # A client that reads status codes still gets the 410.
    gone = await client.get("/api/gateway/sse", params={"after": 9}, headers=alice.auth)
    await expect_problem(gone, 410)
