"""Plain helpers shared by the tests (imported normally; the fixtures live in tests/fixtures/,
loaded as plugins by tests/conftest.py)."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient

from server.config import Settings, load_settings


def make_settings(database_url: str, tmp_path: Path, **overrides: Any) -> Settings:
    base: dict[str, Any] = {
        "server": {"data_dir": str(tmp_path / "var")},
        "database": {"url": database_url, "migrate_on_start": False, "pool_max": 10},
        "redis": {"url": ""},
        "auth": {
            "jwt_secret": "test-secret-" + "x" * 32,
            "argon2_time_cost": 1,
            "argon2_memory_kib": 1024,
            # Sign in at registration (tests/helpers.register); tests/test_verification.py
            # covers the default, "verify_email".
            "registration": "open",
        },
        # Tests register many users from one address; the registration limit has its own tests.
        "rate_limits": {"register_per_ip": "10000/3600"},
    }
    for section, values in overrides.items():
        base.setdefault(section, {}).update(values)
    return load_settings(env={}, **base)


@dataclass
class User:
    id: str
    username: str
    email: str
    password: str
    token: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


async def register(client: TestClient, username: str, **extra: Any) -> User:
    body = {"username": username, "email": f"{username}@example.com", "password": "s3cret-pass"}
    body.update(extra)
    resp = await client.post("/api/auth/register", json=body)
    assert resp.status == 201, await resp.text()
    data = await resp.json()
    client.session.cookie_jar.clear()
    return User(data["user"]["id"], username, body["email"], body["password"], data["access_token"])


async def expect_problem(resp, status: int) -> dict:
    assert resp.status == status, f"{resp.status}: {await resp.text()}"
    assert resp.content_type == "application/problem+json"
    body = await resp.json()
    assert body["status"] == status and body["title"] and body["detail"]
    return body


async def drop_redis_prefix(url: str, prefix: str) -> None:
    """Delete every key a test wrote under its own Redis key prefix."""
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(url)
    async for key in client.scan_iter(match=f"{prefix}*", count=500):
        await client.delete(key)
    await client.aclose()


def free_port() -> int:
    """A TCP port on 127.0.0.1 nothing listens on (for servers the tests start)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
