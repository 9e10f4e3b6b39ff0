"""Helpers for the notification and job tests: an app whose jobs the test runs on demand, bus
listeners, direct notify() calls inside real transactions, received emails (the local SMTP and
push relay servers are the `smtp_server` and `relay` fixtures)."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from email.message import Message
from typing import Any

from aiohttp.test_utils import TestClient

from server.app import create_app
from server.app_keys import CONTEXT
from server.bus.base import UserEvent
from server.domain import notifications
from server.domain.context import Context
from server.ids import new_id
from server.jobs.worker import Worker
from tests.helpers import make_settings


def ctx_of(client: TestClient) -> Context:
    return client.server.app[CONTEXT]


async def app_client(aiohttp_client, database_url: str, tmp_path, **overrides: Any) -> TestClient:
    """A test client on a fresh app; its jobs run only when the test says (run_jobs)."""
    overrides.setdefault("jobs", {})
    overrides["jobs"] = {"in_process_worker": False, "retry_base_s": 1, **overrides["jobs"]}
    settings = make_settings(database_url, tmp_path, **overrides)
    return await aiohttp_client(create_app(settings))


async def run_jobs(client: TestClient, timeout_s: float = 30) -> int:
    """Run every due job to completion (and those they enqueue) in this process."""
    worker = Worker(ctx_of(client), listen=False, periodic=False)
    return await worker.run_until_idle(timeout_s)


async def jobs(client: TestClient, kind: str | None = None) -> list[dict[str, Any]]:
    db = ctx_of(client).db
    if kind is None:
        return await db.fetch("SELECT * FROM jobs ORDER BY created_at, id")
    return await db.fetch("SELECT * FROM jobs WHERE kind = %s ORDER BY created_at, id", (kind,))


async def make_due(client: TestClient) -> None:
    """Pretend the future is now: every queued job becomes due."""
    await ctx_of(client).db.execute("UPDATE jobs SET run_at = now() WHERE status = 'queued'")


@dataclass
class Events:
    items: list[UserEvent] = field(default_factory=list)

    def __call__(self, event: UserEvent) -> None:
        self.items.append(event)

    def of(self, user_id: str | uuid.UUID, type: str | None = None) -> list[UserEvent]:
        uid = uuid.UUID(str(user_id))
        return [e for e in self.items if e.user_id == uid and (type is None or e.type == type)]


def listen(client: TestClient) -> Events:
    events = Events()
    ctx_of(client).bus.user_listeners.append(events)
    return events


async def set_online(client: TestClient, user_id: str) -> None:
    bus = ctx_of(client).bus
    uid = uuid.UUID(str(user_id))
    if hasattr(bus, "presence_join"):
        await bus.presence_join(uid)
    else:  # pragma: no cover - the first memory engine
        bus.sessions[uid] = bus.sessions.get(uid, 0) + 1


async def notify(client: TestClient, **kwargs: Any) -> dict[str, Any] | None:
    """notify() inside its own committed transaction (stands in for a capability's action)."""
    ctx = ctx_of(client)
    for key in ("recipient_id", "actor_id", "entity_id"):
        if isinstance(kwargs.get(key), str):
            kwargs[key] = uuid.UUID(kwargs[key])
    kwargs.setdefault("entity_id", new_id())
    kwargs.setdefault("entity_type", "post")
    async with ctx.db.transaction() as tx:
        return await notifications.notify(ctx, tx, **kwargs)


async def insert_users(client: TestClient, count: int, prefix: str = "fan") -> list[uuid.UUID]:
    """Many users at once, straight into the table (no password hashing)."""
    db = ctx_of(client).db
    ids = [new_id() for _ in range(count)]
    tag = uuid.uuid4().hex[:6]
    await db.execute(
        """INSERT INTO users (id, username, email, password_hash, display_name)
           SELECT u, %(p)s || '_' || %(t)s || '_' || n, %(p)s || n || '_' || %(t)s || '@x.test',
                  'x', 'Fan ' || n
           FROM unnest(%(ids)s::uuid[]) WITH ORDINALITY AS a(u, n)""",
        {"p": prefix, "t": tag, "ids": ids},
    )
    return ids


async def listing(client: TestClient, user, **params: Any) -> dict[str, Any]:
    resp = await client.get("/api/notifications", params=params, headers=user.auth)
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def unread(client: TestClient, user) -> int:
    resp = await client.get("/api/notifications/unread-count", headers=user.auth)
    assert resp.status == 200, await resp.text()
    return (await resp.json())["unread_count"]


def body_of(msg: Message) -> str:
    """The text/plain body of a received email."""
    return msg.get_body(preferencelist=("plain",)).get_content()


async def wait_until(predicate: Any, timeout_s: float = 5, interval_s: float = 0.02) -> Any:
    """Poll `predicate` (sync or async) until it returns something truthy; fail on timeout."""
    steps = max(1, int(timeout_s / interval_s))
    for _ in range(steps):
        result = predicate()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        await asyncio.sleep(interval_s)
    raise AssertionError(f"condition not met within {timeout_s} s")
