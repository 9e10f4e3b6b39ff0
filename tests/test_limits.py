"""Limits that cannot be sidestepped (issue 17, findings 3, 4 and 10):

- one API budget per user, spent by HTTP requests and gateway calls / subscriptions alike;
- a cap on a user's live sockets (the oldest closes with 4013);
- GCRA instead of fixed windows: no 2x burst across a window edge (the clock is pinned);
- registration and forgot-password limited per address and overall.

Each runs on the memory and the Redis engine.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from protocol import frames
from protocol.constants import CloseCode, Op
from server.app import create_app
from server.bus.ratelimit import MemoryRateLimiter, RedisRateLimiter
from server.clock import ManualClock
from server.config import RateLimit
from tests.gateway_support import connect
from tests.helpers import expect_problem, register

# One second before a minute boundary: where a fixed one-minute window resets.
EDGE = datetime(2031, 3, 4, 10, 0, 59, tzinfo=UTC)


@pytest.fixture
def engine(bus_engine):
    return bus_engine


async def _get(client, user) -> int:
    return (await client.get(f"/api/users/{user.username}", headers=user.auth)).status


@pytest.mark.app_settings(rate_limits={"api": "4/60"})
async def test_no_double_burst_across_a_window_edge(aiohttp_client, settings, engine):
    clock = ManualClock(EDGE)
    client = await aiohttp_client(create_app(settings, clock=clock))
    alice = await register(client, "alice")
    assert [await _get(client, alice) for _ in range(4)] == [200] * 4
    limited = await client.get("/api/users/alice", headers=alice.auth)
    body = await expect_problem(limited, 429)
    assert "4 per 60 s" in body["detail"]
    assert int(limited.headers["Retry-After"]) == 15  # one request back every 60 / 4 s

    clock.advance(seconds=2)  # past the minute edge: a fixed window would allow 4 more here
    assert await _get(client, alice) == 429
    clock.advance(seconds=13)  # 15 s after the burst: exactly one request is back
    assert [await _get(client, alice) for _ in range(2)] == [200, 429]
    clock.advance(seconds=60)  # a quiet minute gives the whole budget back, no more
    assert [await _get(client, alice) for _ in range(5)] == [200] * 4 + [429]


@pytest.mark.parametrize("kind", ["memory", "redis"])
async def test_the_engines_agree_on_the_budget_and_refunds(kind, request):
    clock = ManualClock(EDGE)
    if kind == "redis":
        import redis.asyncio as redis

        conn = redis.from_url(request.getfixturevalue("redis_url"))
        limiter = RedisRateLimiter(conn, prefix=f"test:{uuid.uuid4().hex}:", clock=clock)
    else:
        limiter = MemoryRateLimiter(clock)
    limit = RateLimit(count=3, window_s=30)
    try:
        assert [await limiter.hit("k", limit) for _ in range(4)] == [0, 0, 0, 10]
        await limiter.hit("k", limit, cost=-1)  # a refund: the guarded work did not happen
        assert [await limiter.hit("k", limit) for _ in range(2)] == [0, 10]
        clock.advance(seconds=1.5)  # past the edge of a 30 s window (10:01:00)
        assert await limiter.hit("k", limit) == 9
        clock.advance(seconds=8.5)
        assert [await limiter.hit("k", limit) for _ in range(2)] == [0, 10]
        await limiter.reset("k")
        assert [await limiter.hit("k", limit) for _ in range(4)] == [0, 0, 0, 10]
    finally:
        if kind == "redis":
            await conn.aclose()


@pytest.mark.app_settings(rate_limits={"api": "6/3600"})
async def test_gateway_calls_spend_the_http_budget(client, engine):
    alice = await register(client, "alice")
    bob = await register(client, "bob")
    for _ in range(3):
        assert await _get(client, alice) == 200
    sockets = [await connect(client, alice.token) for _ in range(2)]
    replies = []
    for n in range(4):  # spread over two sockets: the budget is the user's, not the socket's
        sock = sockets[n % 2]
        await sock.send(frames.call(f"c{n}", "conversations.list", {}))
        replies.append((await sock.expect(Op.REPLY))["d"])
    assert [r["ok"] for r in replies] == [True, True, True, False]
    assert replies[3]["error"]["code"] == "rate_limited"
    assert replies[3]["error"]["retry_after"] >= 1
    # The other way round: the calls used the budget up, so HTTP is refused too...
    await expect_problem(await client.get("/api/users/alice", headers=alice.auth), 429)
    # ...and a subscription is a read like any other.
    await sockets[0].send(frames.subscribe(f"group:{uuid.uuid4()}", "s1"))
    reply = (await sockets[0].expect(Op.REPLY))["d"]
    assert reply["error"]["code"] == "rate_limited"
    # Other users are not affected, and the sockets stay open (the frame cap is separate).
    assert await _get(client, bob) == 200
    await sockets[1].send(frames.call("c9", "conversations.list", {}))
    assert (await sockets[1].expect(Op.REPLY))["d"]["ok"] is False


@pytest.mark.app_settings(gateway={"max_sockets_per_user": 2})
async def test_a_users_socket_count_is_capped_oldest_closes(client, alice, bob, engine):
    first = await connect(client, alice.token)
    second = await connect(client, alice.token)
    bobs = await connect(client, bob.token)
    third = await connect(client, alice.token)
    code, reason = await first.closed()
    assert code == CloseCode.TOO_MANY_SOCKETS and "oldest" in reason
    for sock in (second, third, bobs):
        with pytest.raises(TimeoutError):
            await sock.closed(0.2)
    reply = await third.call("conversations.list", "c1")
    assert reply["ok"] is True


@pytest.mark.app_settings(rate_limits={"register_per_ip": "3/3600", "register_global": "1000/3600"})
async def test_registration_is_limited_per_address(client, engine):
    for n in range(3):
        await register(client, f"user{n}")
    body = {"username": "user9", "email": "user9@example.com", "password": "s3cret-pass"}
    limited = await client.post("/api/auth/register", json=body)
    await expect_problem(limited, 429)
    assert int(limited.headers["Retry-After"]) >= 1
    # Refused before any work: the account was not created.
    login = await client.post("/api/auth/login", json={"login": "user9", "password": "s3cret-pass"})
    await expect_problem(login, 401)


@pytest.mark.app_settings(rate_limits={"register_per_ip": "1000/3600", "register_global": "2/3600"})
async def test_registration_is_limited_overall(client, engine):
    await register(client, "user1")
    await register(client, "user2")
    body = {"username": "user3", "email": "user3@example.com", "password": "s3cret-pass"}
    await expect_problem(await client.post("/api/auth/register", json=body), 429)


@pytest.mark.app_settings(
    rate_limits={"forgot_password_per_ip": "100/3600", "forgot_password_global": "2/3600"}
)
async def test_forgot_password_is_limited_overall(client, engine):
    for n in range(2):
        resp = await client.post("/api/auth/forgot-password", json={"email": f"x{n}@example.com"})
        assert resp.status == 202
    resp = await client.post("/api/auth/forgot-password", json={"email": "x9@example.com"})
    await expect_problem(resp, 429)
