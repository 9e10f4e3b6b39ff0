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
        """The next frame that is not a heartbeat_ack; it must be `op`."""
        while True:
            frame = await self.recv(wait_s)
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
                    return self.ws.close_code, str(msg.extra or "")

    async def identify(self, token: str) -> dict[str, Any]:
        await self.send(frames.identify(token))
        return (await self.expect(Op.READY))["d"]

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
