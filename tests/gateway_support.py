"""Helpers for gateway tests: a raw protocol socket (frame by frame) over aiohttp's client."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import aiohttp
from aiohttp.test_utils import TestClient

from protocol import frames
from protocol.codec import get_codec
from protocol.constants import Op
from server.app_keys import CONTEXT


class RawSocket:
    def __init__(self, ws: aiohttp.ClientWebSocketResponse, encoding: str) -> None:
        self.ws = ws
        self.codec = get_codec(encoding)
        self.hello: dict[str, Any] = {}
        self.ready: dict[str, Any] = {}  # the last ready's d

    async def send(self, frame: dict[str, Any]) -> None:
        data = self.codec.encode(frame)
        if self.codec.binary:
            await self.ws.send_bytes(data)
        else:
            await self.ws.send_str(data.decode())

    async def send_bytes(self, data: bytes) -> None:
        await self.ws.send_bytes(data)

    async def send_str(self, data: str) -> None:
        await self.ws.send_str(data)

    async def recv(self, wait_s: float = 5.0) -> dict[str, Any]:
        msg = await self.ws.receive(timeout=wait_s)
        if msg.type not in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
            raise AssertionError(f"socket ended: {msg.type} {self.ws.close_code} {msg.extra}")
        if self.codec.binary:
            assert msg.type == aiohttp.WSMsgType.BINARY, "msgpack frames are binary"
        else:
            assert msg.type == aiohttp.WSMsgType.TEXT, "json frames are text"
        return self.codec.decode(msg.data)

    async def expect(self, op: str, wait_s: float = 5.0) -> dict[str, Any]:
        """The next frame that is not a heartbeat_ack; it must be `op`. While waiting for
        another op, feed pushes are skipped too: the fan-out job sends `feed.post` (to the
        author as well: the home feed holds their own posts) whenever it gets to it, so it may
        arrive before a reply the test is waiting for."""
        while True:
            frame = await self.recv(wait_s)
            if op != Op.EVENT and frame["op"] == Op.EVENT and _is_feed_push(frame):
                continue
            if frame["op"] != Op.HEARTBEAT_ACK or op == Op.HEARTBEAT_ACK:
                assert frame["op"] == op, frame
                return frame

    async def closed(self, wait_s: float = 5.0) -> tuple[int | None, str]:
        """Read until the server closes; return (code, reason)."""
        async with asyncio.timeout(wait_s):
            while True:
                msg = await self.ws.receive()
                if msg.type in (
                    aiohttp.WSMsgType.CLOSE,
                    aiohttp.WSMsgType.CLOSED,
                    aiohttp.WSMsgType.CLOSING,
                    aiohttp.WSMsgType.ERROR,
                ):
                    # The CLOSE frame's own code: aiohttp's close_code can turn into 1006 when
                    # the server drops the connection before the client's closing reply.
                    if msg.type == aiohttp.WSMsgType.CLOSE and isinstance(msg.data, int):
                        return msg.data, str(msg.extra or "")
                    return self.ws.close_code, str(msg.extra or "")

    async def identify(self, token: str) -> dict[str, Any]:
        await self.send(frames.identify(token))
        self.ready = (await self.expect(Op.READY))["d"]
        return self.ready

    async def call(self, method: str, call_id: str = "c1", **params: Any) -> dict[str, Any]:
        await self.send(frames.call(call_id, method, params))
        reply = await self.expect(Op.REPLY)
        assert reply["id"] == call_id
        return reply["d"]

    async def close(self) -> None:
        await self.ws.close()


async def open_socket(client: TestClient, encoding: str = "json", **query: str) -> RawSocket:
    params = {"encoding": encoding, **query}
    ws = await client.ws_connect("/api/gateway/ws", params=params, autoping=True)
    sock = RawSocket(ws, encoding)
    hello = await sock.expect(Op.HELLO)
    sock.hello = hello["d"]
    return sock


async def connect(client: TestClient, token: str, encoding: str = "json") -> RawSocket:
    sock = await open_socket(client, encoding)
    await sock.identify(token)
    return sock


async def publish(client: TestClient, user_ids: list[str], type: str, data: dict) -> list:
    bus = client.server.app[CONTEXT].bus
    return await bus.publish_user([uuid.UUID(u) for u in user_ids], type, data)


async def publish_topic(client: TestClient, topic: str, type: str, data: dict) -> None:
    await client.server.app[CONTEXT].bus.publish_topic(topic, type, data)


# Real server processes (cross-node tests) -------------------------------------------------------


class Node:
    """`python -m server serve` in its own process."""

    def __init__(self, port: int, env: dict[str, str], log_path: str) -> None:
        import subprocess
        import sys

        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.ws_url = f"{self.url}/api/gateway/ws"
        self._log = open(log_path, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "server", "serve", "--port", str(port)],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self.log_path = log_path

    async def wait_ready(self, session: aiohttp.ClientSession, wait_s: float = 30) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        while loop.time() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                async with session.get(f"{self.url}/readyz") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
        with open(self.log_path, "rb") as log:  # noqa: ASYNC230 (failure path)
            raise AssertionError(f"node on {self.port} did not start:\n{log.read()[-3000:]!r}")

    def stop(self) -> None:
        import subprocess

        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()


def node_env(database_url: str, redis_url: str, prefix: str, data_dir: str) -> dict[str, str]:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("NEXGATE_")}
    env.update(
        {
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "NEXGATE_REDIS_PREFIX": prefix,
            "NEXGATE_DATABASE_MIGRATE_ON_START": "false",
            "NEXGATE_AUTH_JWT_SECRET": "cross-node-secret-" + "y" * 32,
            "NEXGATE_AUTH_ARGON2_TIME_COST": "1",
            "NEXGATE_AUTH_ARGON2_MEMORY_KIB": "1024",
            "NEXGATE_AUTH_REGISTRATION": "open",
            "NEXGATE_SERVER_DATA_DIR": data_dir,
            "NEXGATE_SERVER_LOG_LEVEL": "WARNING",
            "NEXGATE_JOBS_IN_PROCESS_WORKER": "false",
            "NEXGATE_DATABASE_POOL_MAX": "4",
        }
    )
    return env


async def sse_event(resp, wait_s: float = 5.0) -> dict:
    """The next SSE event as {id?, event?, data} (comments skipped)."""
    fields: dict = {}
    async with asyncio.timeout(wait_s):
        while True:
            line = (await resp.content.readline()).decode()
            if line == "":
                raise AssertionError("stream ended")
            line = line.rstrip("\n")
            if not line:
                if "data" in fields:
                    return fields
                fields = {}
                continue
            if line.startswith(":"):
                continue
            name, _, value = line.partition(": ")
            fields[name] = value


def _is_feed_push(frame: dict[str, Any]) -> bool:
    return str(frame.get("t", "")).startswith("feed.")
