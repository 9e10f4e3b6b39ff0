"""Server-side framing: RFC 6455 frames written straight to the transport, and events encoded
once per encoding however many sockets they go to."""

from __future__ import annotations

import struct
from typing import Any

import orjson

from protocol.codec import JsonCodec, MsgpackCodec, json_dumps
from protocol.constants import Op

OPCODE_TEXT = 0x1
OPCODE_BINARY = 0x2
_B = struct.Struct("!BB")
_H = struct.Struct("!BBH")
_Q = struct.Struct("!BBQ")


def ws_frame(payload: bytes, binary: bool) -> bytes:
    """One unmasked, unfragmented, uncompressed server frame."""
    first = 0x80 | (OPCODE_BINARY if binary else OPCODE_TEXT)
    n = len(payload)
    if n < 126:
        return _B.pack(first, n) + payload
    if n < 65536:
        return _H.pack(first, 126, n) + payload
    return _Q.pack(first, 127, n) + payload


class Outgoing:
    """One frame to many sockets: the payload and the WebSocket frame of each encoding are built
    on first use and then shared."""

    __slots__ = ("_json", "_msgpack", "_ws_json", "_ws_msgpack", "frame")

    def __init__(self, frame: dict[str, Any], json_payload: bytes | None = None) -> None:
        self.frame = frame
        self._json = json_payload
        self._msgpack: bytes | None = None
        self._ws_json: bytes | None = None
        self._ws_msgpack: bytes | None = None

    def payload(self, binary: bool) -> bytes:
        if binary:
            if self._msgpack is None:
                self._msgpack = MsgpackCodec.encode(self.frame)
            return self._msgpack
        if self._json is None:
            self._json = JsonCodec.encode(self.frame)
        return self._json

    def ws(self, binary: bool) -> bytes:
        if binary:
            if self._ws_msgpack is None:
                self._ws_msgpack = ws_frame(self.payload(True), True)
            return self._ws_msgpack
        if self._ws_json is None:
            self._ws_json = ws_frame(self.payload(False), False)
        return self._ws_json


def user_event_frame(type: str, seq: int, data: Any, data_json: bytes | None) -> Outgoing:
    frame = {"op": Op.EVENT, "t": type, "s": seq, "d": data}
    payload = None
    if data_json is not None:  # splice the already-encoded data instead of re-encoding it
        payload = b'{"op":"event","t":%b,"s":%d,"d":%b}' % (orjson.dumps(type), seq, data_json)
    return Outgoing(frame, payload)


def topic_event_frame(topic: str, type: str, data: Any, data_json: bytes | None) -> Outgoing:
    frame = {"op": Op.EVENT, "t": type, "topic": topic, "d": data}
    payload = None
    if data_json is not None:
        payload = b'{"op":"event","t":%b,"topic":%b,"d":%b}' % (
            orjson.dumps(type),
            orjson.dumps(topic),
            data_json,
        )
    return Outgoing(frame, payload)


def encode(frame: dict[str, Any], binary: bool) -> bytes:
    """A complete WebSocket frame for one envelope."""
    payload = MsgpackCodec.encode(frame) if binary else JsonCodec.encode(frame)
    return ws_frame(payload, binary)


__all__ = ["Outgoing", "encode", "json_dumps", "topic_event_frame", "user_event_frame", "ws_frame"]
