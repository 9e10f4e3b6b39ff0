"""Test setup: a real PostgreSQL (NEXGATE_TEST_DATABASE_URL, else the embedded one), one fresh
database per test session, every table emptied before each test."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg2
import pytest
from aiohttp.test_utils import TestClient

from server.app import create_app
from server.config import Settings, load_settings
from server.store.migrate import apply_migrations

EMBEDDED_TEST_PGDATA = Path("/tmp/nexgate-test-pg")


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    base = os.environ.get("NEXGATE_TEST_DATABASE_URL")
    if not base:
        from server.store.embedded import start_embedded

        base = start_embedded(EMBEDDED_TEST_PGDATA)
    name = f"nexgate_t_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = psycopg2.connect(_with_database(base, "postgres"))
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    url = _with_database(base, name)
    apply_migrations(url)
    yield url
    with admin.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.close()


@pytest.fixture(scope="session")
def _tables(database_url: str) -> list[str]:
    conn = psycopg2.connect(database_url)
    with conn.cursor() as cur:
        cur.execute(
            """SELECT tablename FROM pg_tables WHERE schemaname = 'public'
               AND tablename NOT LIKE '%%yoyo%%'"""
        )
        tables = [row[0] for row in cur.fetchall()]
    conn.close()
    return tables


@pytest.fixture
def clean_db(database_url: str, _tables: list[str]) -> str:
    conn = psycopg2.connect(database_url)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("TRUNCATE " + ", ".join(f'"{t}"' for t in _tables) + " CASCADE")
    conn.close()
    return database_url


@pytest.fixture
def redis_url() -> str:
    url = os.environ.get("NEXGATE_TEST_REDIS_URL")
    if not url:
        pytest.skip("NEXGATE_TEST_REDIS_URL is not set: Redis-backed engines are not tested")
    return url


async def drop_redis_prefix(url: str, prefix: str) -> None:
    """Delete every key a test wrote under its own Redis key prefix."""
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(url)
    async for key in client.scan_iter(match=f"{prefix}*", count=500):
        await client.delete(key)
    await client.aclose()


@pytest.fixture
async def redis_prefix(redis_url: str) -> AsyncIterator[str]:
    """A key prefix of this test's own on the test Redis, emptied afterwards."""
    value = f"test:{uuid.uuid4().hex[:10]}:"
    yield value
    await drop_redis_prefix(redis_url, value)


def make_settings(database_url: str, tmp_path: Path, **overrides: Any) -> Settings:
    base: dict[str, Any] = {
        "server": {"data_dir": str(tmp_path / "var")},
        "database": {"url": database_url, "migrate_on_start": False, "pool_max": 10},
        "redis": {"url": ""},
        "auth": {
            "jwt_secret": "test-secret-" + "x" * 32,
            "argon2_time_cost": 1,
            "argon2_memory_kib": 1024,
        },
    }
    for section, values in overrides.items():
        base.setdefault(section, {}).update(values)
    return load_settings(env={}, **base)


@pytest.fixture
def settings(clean_db: str, tmp_path: Path) -> Settings:
    return make_settings(clean_db, tmp_path)


@pytest.fixture
async def client(aiohttp_client, settings: Settings) -> TestClient:
    return await aiohttp_client(create_app(settings))


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


@pytest.fixture
def make_user(client: TestClient):
    async def factory(username: str | None = None, **extra: Any) -> User:
        return await register(client, username or f"u_{uuid.uuid4().hex[:10]}", **extra)

    return factory


@pytest.fixture
async def alice(make_user) -> User:
    return await make_user("alice")


@pytest.fixture
async def bob(make_user) -> User:
    return await make_user("bob")


async def expect_problem(resp, status: int) -> dict:
    assert resp.status == status, f"{resp.status}: {await resp.text()}"
    assert resp.content_type == "application/problem+json"
    body = await resp.json()
    assert body["status"] == status and body["title"] and body["detail"]
    return body
