"""Typed payloads of the frames (TypedDicts) and small builders for envelopes."""

from __future__ import annotations

from typing import Any, NotRequired, TypedDict

from protocol.constants import Op


class Envelope(TypedDict):
    op: str
    d: NotRequired[dict[str, Any] | None]
    s: NotRequired[int]
    t: NotRequired[str]
    id: NotRequired[str | int]
    topic: NotRequired[str]


class Hello(TypedDict):
    heartbeat_interval_ms: int
    protocol_version: int
    session_timeout_ms: int
    max_frame_bytes: int
    encoding: str


class Identify(TypedDict):
    token: str
    properties: NotRequired[dict[str, str]]


class ReadyUser(TypedDict):
    id: str
    username: str
    roles: list[str]


class Ready(TypedDict):
    session_id: str
    user: ReadyUser
    seq: int


class Resume(TypedDict):
    token: str
    session_id: str
    seq: int


class Resumed(TypedDict):
    session_id: str
    seq: int
    replayed: int
    topics: list[str]


class InvalidSession(TypedDict):
    resumable: bool
    reason: str


class Call(TypedDict):
    method: str
    params: NotRequired[dict[str, Any]]


class CallError(TypedDict):
    code: str
    message: str
    errors: NotRequired[dict[str, list[str]]]
    retry_after: NotRequired[int]


class Reply(TypedDict):
    ok: bool
    result: NotRequired[Any]
    error: NotRequired[CallError]


class Subscribe(TypedDict):
    topic: str


class PresenceUpdated(TypedDict):
    user_id: str
    status: str  # "online" | "offline"


def frame(op: str, d: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"op": op}
    if d is not None:
        out["d"] = d
    for key, value in extra.items():
        if value is not None:
            out[key] = value
    return out


def identify(token: str, **properties: str) -> dict[str, Any]:
    d: dict[str, Any] = {"token": token}
    if properties:
        d["properties"] = properties
    return frame(Op.IDENTIFY, d)


def resume(token: str, session_id: str, seq: int, epoch: str | None = None) -> dict[str, Any]:
    d: dict[str, Any] = {"token": token, "session_id": session_id, "seq": seq}
    if epoch is not None:
        d["epoch"] = epoch
    return frame(Op.RESUME, d)


def heartbeat(seq: int | None = None) -> dict[str, Any]:
    return frame(Op.HEARTBEAT, {"seq": seq} if seq is not None else None)


def call(call_id: str | int, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    return frame(Op.CALL, {"method": method, "params": params or {}}, id=call_id)


def subscribe(topic: str, call_id: str | int | None = None) -> dict[str, Any]:
    return frame(Op.SUBSCRIBE, {"topic": topic}, id=call_id)


def unsubscribe(topic: str, call_id: str | int | None = None) -> dict[str, Any]:
    return frame(Op.UNSUBSCRIBE, {"topic": topic}, id=call_id)
