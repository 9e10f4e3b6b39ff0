"""Server-side prepared statements on the DM hot path (issue 15 follow-up): the message append
and the delivery ack run as prepared statements, and a connection that lost them (DISCARD ALL
behind the store's back, a recycled pool) still sends and acks."""

from __future__ import annotations

import asyncio

import pytest

from server.app_keys import CONTEXT
from tests.messaging_support import MESSAGING_SETTINGS, gateway, messages, next_of, open_dm, send

pytestmark = pytest.mark.app_settings(**MESSAGING_SETTINGS)


async def _on_every_connection(client, sql: str) -> list[list[tuple]]:
    """Run `sql` on each connection of the app's pool, straight through aiopg (not through the
    store interface, so nothing there learns of it); the rows of each."""
    pool = client.server.app[CONTEXT].db.pool
    # Wait for work after the last request (outbox deletes, the notifier) to give its
    # connection back, so that every connection gets `sql`.
    for _ in range(100):
        if pool.freesize == pool.size:
            break
        await asyncio.sleep(0.05)
    held = [await pool.acquire() for _ in range(pool.size)]
    try:
        results = []
        for conn in held:
            async with conn.cursor() as cur:
                await cur.execute(sql)
                results.append(await cur.fetchall() if cur.description else [])
        return results
    finally:
        for conn in held:
            pool.release(conn)


async def _send_and_ack(client, alice, bob, cid: str, gw_a, gw_b, text: str) -> None:
    m = await send(client, alice, cid, text)
    assert (await next_of(gw_b, "message.created")).data["message"]["content"] == text
    resp = await client.post(
        f"/api/conversations/{cid}/delivered", json={"seq": m["seq"]}, headers=bob.auth
    )
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["delivered_seq"] == m["seq"]
    assert (await next_of(gw_a, "message.delivered")).data["seq"] == m["seq"]


async def test_sends_and_acks_survive_discard_all_and_a_recycled_pool(client, alice, bob):
    cid = await open_dm(client, alice, bob)
    gw_a, gw_b = await gateway(client, alice), await gateway(client, bob)
    try:
        await _send_and_ack(client, alice, bob, cid, gw_a, gw_b, "first")
        prepared = {
            name
            for rows in await _on_every_connection(
                client, "SELECT name FROM pg_prepared_statements"
            )
            for (name,) in rows
        }
        assert {"messaging.append", "conversations.advance_delivered"} <= prepared

        # Every connection forgets its prepared statements without the store knowing: the
        # next sends and acks (over several connections of the pool, which hands them out in
        # turn) find out and prepare again, and nobody sees an error.
        await _on_every_connection(client, "DISCARD ALL")
        for n in range(4):
            await _send_and_ack(client, alice, bob, cid, gw_a, gw_b, f"after discard {n}")

        # A recycled pool: new connections, nothing prepared on them yet.
        await client.server.app[CONTEXT].db.pool.clear()
        await _send_and_ack(client, alice, bob, cid, gw_a, gw_b, "on a new connection")

        page = await messages(client, alice, cid)
        assert [m["content"] for m in page["items"]] == [
            "on a new connection",
            *(f"after discard {n}" for n in (3, 2, 1, 0)),
            "first",
        ]
        assert all(m["status"] == "delivered" for m in page["items"])
    finally:
        await gw_a.close()
        await gw_b.close()


async def test_a_rolled_back_send_after_a_prepare_leaves_sends_working(client, alice, bob):
    """PREPARE outlives a rolled-back transaction (it is not transactional): a resend of a used
    nonce prepares the append again (its connection lost it) and then rolls back; the next
    sends must neither fail with "already exists" nor with "does not exist"."""
    cid = await open_dm(client, alice, bob)
    first = await send(client, alice, cid, "once", nonce="n-1")
    await _on_every_connection(client, "DISCARD ALL")
    again = await send(client, alice, cid, "once", nonce="n-1")
    assert again["id"] == first["id"]
    after = await send(client, alice, cid, "still works")
    await client.server.app[CONTEXT].db.pool.clear()
    last = await send(client, alice, cid, "and on a new connection")
    page = await messages(client, bob, cid)
    assert [m["content"] for m in page["items"]] == [
        "and on a new connection",
        "still works",
        "once",
    ]
    assert (after["seq"], last["seq"]) == (first["seq"] + 1, first["seq"] + 2)
