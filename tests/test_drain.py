"""Graceful drain for rolling deploys, on a real `nexgate serve` process: SIGTERM turns
readiness false first (the load balancer stops sending new clients), then connected clients
are told to reconnect elsewhere, spread over a few seconds rather than all at once; a waiting
long-poll answers instead of being cut; the process then exits cleanly."""

from __future__ import annotations

import asyncio
import signal

import aiohttp

from protocol import frames
from protocol.codec import JsonCodec
from protocol.constants import CloseCode, Op
from tests.gateway_support import Node, node_env
from tests.helpers import free_port


async def _identified_socket(session: aiohttp.ClientSession, node: Node, token: str):
    ws = await session.ws_connect(node.ws_url)
    assert JsonCodec.decode((await ws.receive()).data)["op"] == Op.HELLO
    await ws.send_str(JsonCodec.encode(frames.identify(token)).decode())
    assert JsonCodec.decode((await ws.receive(5)).data)["op"] == Op.READY
    return ws


async def _until_told(ws: aiohttp.ClientWebSocketResponse, loop) -> tuple[float, int | None]:
    """When the socket got `reconnect`, and the close code that followed."""
    told = None
    while True:
        msg = await ws.receive(30)
        if msg.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
            if JsonCodec.decode(msg.data)["op"] == Op.RECONNECT:
                told = loop.time()
            continue
        assert told is not None, f"closed without a reconnect frame: {msg}"
        return told, ws.close_code


async def test_sigterm_drains_readiness_first_then_spreads_reconnects(clean_db, tmp_path):
    env = node_env(clean_db, "", "", str(tmp_path / "var"))
    env.pop("REDIS_URL")
    env.pop("NEXGATE_REDIS_PREFIX")
    env.update(NEXGATE_SERVER_DRAIN_GRACE_S="1.5", NEXGATE_SERVER_DRAIN_SPREAD_S="2")
    node = Node(free_port(), env, str(tmp_path / "node.log"))
    loop = asyncio.get_running_loop()
    async with aiohttp.ClientSession() as session:
        try:
            await node.wait_ready(session)
            body = {"username": "dana", "email": "dana@example.com", "password": "s3cret-pass"}
            async with session.post(f"{node.url}/api/auth/register", json=body) as resp:
                assert resp.status == 201
                token = (await resp.json())["access_token"]
            auth = {"Authorization": f"Bearer {token}"}
            sockets = [await _identified_socket(session, node, token) for _ in range(8)]
            async with session.get(f"{node.url}/api/gateway/events", headers=auth) as resp:
                cursor = await resp.json()
            poll = asyncio.create_task(
                session.get(
                    f"{node.url}/api/gateway/events",
                    params={"after": str(cursor["seq"]), "epoch": cursor["epoch"], "timeout": "25"},
                    headers=auth,
                )
            )
            await asyncio.sleep(0.3)

            node.proc.send_signal(signal.SIGTERM)
            sent = loop.time()
            # Readiness goes false first, while the node still serves its clients.
            async with asyncio.timeout(1):
                while True:
                    async with session.get(f"{node.url}/readyz") as resp:
                        if resp.status == 503:
                            assert (await resp.json())["status"] == "draining"
                            break
                    await asyncio.sleep(0.05)
            async with session.get(f"{node.url}/healthz") as resp:
                assert resp.status == 200  # alive: it is draining, not dead

            results = await asyncio.gather(*(_until_told(ws, loop) for ws in sockets))
            times = sorted(t for t, _ in results)
            assert {code for _, code in results} == {CloseCode.SERVER_RESTART}
            # Not before the grace (load balancers noticed readiness), and spread, not a storm.
            assert times[0] - sent >= 1.2
            assert times[-1] - times[0] >= 1.0
            # The waiting long-poll answered (empty) instead of being cut off.
            resp = await asyncio.wait_for(poll, 10)
            assert resp.status == 200 and (await resp.json())["events"] == []
            assert await asyncio.to_thread(node.proc.wait, 30) == 0
        finally:
            node.stop()
