"""One gateway socket: the connection state machine (hello → identify / resume → ready),
heartbeats, the frame budget, calls, subscriptions and the bounded outbound path. The
identify / resume handshake is the Handshake mixin (server/ws/handshake.py); the aiohttp
endpoint that upgrades the request and runs a Connection is server/ws/endpoint.py.

Outbound frames are written straight to the transport while its buffer is below the high-water
mark; past it they wait in a bounded per-connection backlog drained by a flusher task that only
exists while the client is behind. A backlog over `outbound_queue` frames drops the client with
SLOW_CONSUMER (4010): it reconnects and resumes, and server memory stays bounded.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import deque
from typing import Any

from aiohttp import WSMsgType, web

from protocol.codec import DecodeError, JsonCodec, MsgpackCodec
from protocol.constants import (
    CLIENT_OPS,
    MAX_TOPICS_PER_CONNECTION,
    CloseCode,
    ErrorCode,
    Op,
)
from server.bus.base import UserEvent
from server.bus.faults import is_bus_failure
from server.domain.auth_tokens import Principal
from server.ws import metrics
from server.ws.calls import CALLS, canonical_topic, check_topic, run_call
from server.ws.frames import Outgoing, encode, user_event_frame
from server.ws.handshake import NEW, READY, SYNCING, Handshake
from server.ws.hub import Hub

log = logging.getLogger("nexgate.gateway")

HIGH_WATER = 64 * 1024
CLOSE_TIMEOUT_S = 5.0


def _reason(text: str) -> str:
    return text.encode()[:120].decode(errors="ignore")


class Connection(Handshake):
    """One identified-or-not gateway socket. `ws` is the endpoint's GatewaySocket; frames
    bypass it on the way out (written to `transport` directly, see `write`)."""

    __slots__ = (
        "backlog",
        "binary",
        "budget_count",
        "budget_reset",
        "catcher",
        "close_code",
        "closed",
        "closer",
        "codec",
        "deadline",
        "epoch",
        "flusher",
        "hub",
        "last_s",
        "pending",
        "principal",
        "session_id",
        "sign_in_session",
        "state",
        "topics",
        "transport",
        "user_id",
        "watching",
        "writer",
        "ws",
    )

    def __init__(
        self, hub: Hub, ws: web.WebSocketResponse, transport: Any, writer: Any, binary: bool
    ):
        self.hub = hub
        self.ws = ws
        self.transport = transport
        self.writer = writer
        self.binary = binary
        self.codec = MsgpackCodec if binary else JsonCodec
        self.state = NEW
        self.closed = False
        self.close_code: int | None = None
        self.principal: Principal | None = None
        self.user_id: uuid.UUID | None = None
        self.session_id: str | None = None
        self.sign_in_session: str | None = None
        self.last_s = 0
        self.epoch = ""
        self.pending: list[tuple[UserEvent, Outgoing]] | None = None
        now = time.monotonic()
        self.deadline = now + hub.hello_timeout_s
        self.budget_count = 0
        self.budget_reset = now + hub.frame_budget_window_s
        self.topics: set[str] | None = None
        self.watching: set[uuid.UUID] | None = None
        self.backlog: deque[bytes] | None = None
        self.flusher: asyncio.Task[None] | None = None
        self.closer: asyncio.Task[None] | None = None
        self.catcher: asyncio.Task[None] | None = None

    # outbound -----------------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        """Queue one complete WebSocket frame; never blocks, never grows without bound."""
        if self.closed:
            return
        backlog = self.backlog
        if backlog is None:
            transport = self.transport
            if transport.is_closing():
                self.closed = True
                return
            if transport.get_write_buffer_size() <= HIGH_WATER:
                transport.write(data)
                return
            backlog = self.backlog = deque()
            metrics.BACKLOGGED.inc()
            self.flusher = asyncio.get_running_loop().create_task(self._flush())
        backlog.append(data)
        if len(backlog) > self.hub.outbound_queue:
            metrics.SLOW_CONSUMERS.inc()
            self.close(CloseCode.SLOW_CONSUMER, "too slow: reconnect and resume")

    async def _flush(self) -> None:
        try:
            while self.backlog and not self.closed:
                await self.writer.drain()
                transport = self.transport
                if transport.is_closing():
                    return
                backlog = self.backlog
                while backlog and transport.get_write_buffer_size() <= HIGH_WATER:
                    transport.write(backlog.popleft())
                if backlog:
                    await asyncio.sleep(0.005)
        except (ConnectionError, RuntimeError):
            pass
        finally:
            self.backlog = None
            self.flusher = None

    def push(self, out: Outgoing) -> None:
        self.write(out.ws(self.binary))

    def write_frame(self, frame: dict[str, Any]) -> None:
        self.write(encode(frame, self.binary))
        metrics.frame_out(frame["op"]).inc()

    def reply(self, call_id: Any, body: dict[str, Any]) -> None:
        self.write_frame({"op": Op.REPLY, "id": call_id, "d": body})

    def error(self, call_id: Any, code: str, message: str, **extra: Any) -> None:
        """A failed `subscribe` / `call`: a reply when the frame had an id, else an `error`."""
        if call_id is not None:
            self.reply(call_id, {"ok": False, "error": {"code": code, "message": message}})
        else:
            self.write_frame({"op": Op.ERROR, "d": {"code": code, "message": message, **extra}})

    # user events ---------------------------------------------------------------------------

    def deliver_user(self, event: UserEvent, out: Outgoing) -> None:
        if self.closed:
            return
        if self.pending is not None:  # identifying / resuming / catching up: keep the order
            self.pending.append((event, out))
            return
        if event.epoch != self.epoch:
            self.log_reset(event.epoch)
            return
        seq = event.seq
        if seq <= self.last_s:
            return  # already delivered (replay and live overlap)
        if seq != self.last_s + 1:
            self.pending = [(event, out)]
            self.catcher = asyncio.get_running_loop().create_task(self._catch_up())
            return
        self.last_s = seq
        self.write(out.ws(self.binary))
        metrics.frame_out(Op.EVENT).inc()

    def flush_pending(self) -> None:
        pending, self.pending = self.pending, None
        for event, out in pending or ():
            self.deliver_user(event, out)

    async def send_log(self) -> bool:
        """Send every logged event after `last_s`. False if the log no longer has them."""
        assert self.user_id is not None
        events = await self.hub.bus.events_after(self.user_id, self.last_s, self.epoch)
        if events is None:
            return False
        for event in events:
            if event.seq > self.last_s:
                self.last_s = event.seq
                out = user_event_frame(event.type, event.seq, event.data, event.data_json)
                self.write(out.ws(self.binary))
        metrics.frame_out(Op.EVENT).inc(len(events))
        return True

    def check_gap(self) -> None:
        if self.state == READY and self.pending is None and not self.closed:
            self.pending = []
            self.catcher = asyncio.get_running_loop().create_task(self._catch_up())

    async def _catch_up(self) -> None:
        """A delivery was missed (a gap in `s`): fill it from the log, then go on live."""
        try:
            if not await self.send_log():
                assert self.user_id is not None
                epoch, _ = await self.hub.bus.log_position(self.user_id)
                if epoch != self.epoch:
                    self.log_reset(epoch)
                else:
                    self.close(CloseCode.SLOW_CONSUMER, "missed events: reconnect and resume")
                return
            self.flush_pending()
        except Exception:
            log.exception("gateway catch-up failed")
            self.close(CloseCode.UNKNOWN_ERROR, "server error: reconnect and resume")
        finally:
            self.catcher = None

    def log_reset(self, epoch: str) -> None:
        """The user's log lost its history (new epoch): events this socket has not seen may be
        gone, so it must not go on as if nothing happened. Tell the client (invalid_session,
        code log_reset) and close: it identifies afresh and refetches state over HTTP."""
        if self.closed:
            return
        metrics.RESUMES.labels("log_reset").inc()
        self.write_frame(
            {
                "op": Op.INVALID_SESSION,
                "d": {
                    "resumable": False,
                    "code": "log_reset",
                    "epoch": epoch,
                    "reason": "the event log was reset: identify and refetch over HTTP",
                },
            }
        )
        self.close(CloseCode.LOG_RESET, "event log reset: identify and refetch over HTTP")

    # closing -------------------------------------------------------------------------------

    def close(self, code: int, reason: str = "") -> None:
        if self.closed:
            return
        self.closed = True
        self.close_code = int(code)
        self.backlog = None
        self.pending = None
        self.hub.forget(self)
        metrics.CLOSES.labels(str(int(code))).inc()
        self.closer = asyncio.get_running_loop().create_task(self._close(int(code), reason))

    async def _close(self, code: int, reason: str) -> None:
        transport = self.transport
        try:
            if code == CloseCode.SLOW_CONSUMER:
                # Its buffer is full: do not wait for it to read the close frame.
                asyncio.get_running_loop().call_later(1.0, transport.abort)
            await asyncio.wait_for(
                self.ws.close(code=code, message=_reason(reason).encode(), drain=False),
                CLOSE_TIMEOUT_S + 1,
            )
        except (TimeoutError, ConnectionError, RuntimeError):
            transport.abort()
        except asyncio.CancelledError:
            transport.abort()
            raise

    # inbound -------------------------------------------------------------------------------

    async def run(self) -> None:
        ws = self.ws
        while not self.closed:
            msg = await ws.receive()
            kind = msg.type
            if kind is WSMsgType.TEXT or kind is WSMsgType.BINARY:
                try:
                    await self.on_frame(msg.data)
                except Exception as exc:
                    # Say what failed (4000: reconnect and resume with backoff), never a bare
                    # abnormal closure; a bus outage is expected and is no server bug.
                    if is_bus_failure(exc):
                        log.warning("gateway: bus unavailable: %s", exc)
                        self.close(CloseCode.UNKNOWN_ERROR, "event bus unavailable: retry soon")
                    else:
                        log.exception("gateway frame failed")
                        self.close(CloseCode.UNKNOWN_ERROR, "server error: reconnect and resume")
                    break
            else:  # CLOSE / CLOSING / CLOSED / ERROR
                break

    async def on_frame(self, data: bytes | str) -> None:
        hub = self.hub
        now = time.monotonic()
        if now >= self.budget_reset:
            self.budget_reset = now + hub.frame_budget_window_s
            self.budget_count = 0
        self.budget_count += 1
        if self.budget_count > hub.frame_budget:
            metrics.frame_in("rate_limited").inc()
            self.close(
                CloseCode.RATE_LIMITED,
                f"more than {hub.frame_budget} frames in {hub.frame_budget_window_s:g} s",
            )
            return
        try:
            frame = self.codec.decode(data)
        except DecodeError as exc:
            metrics.frame_in("undecodable").inc()
            self.close(CloseCode.DECODE_ERROR, str(exc))
            return
        op = frame["op"]
        metrics.frame_in(op if op in CLIENT_OPS else "unknown").inc()
        d = frame.get("d") or {}
        if op == Op.HEARTBEAT:
            if self.state == READY:
                self.deadline = now + hub.session_timeout_s
            self.write_frame({"op": Op.HEARTBEAT_ACK})
            return
        if self.state == READY:
            self.deadline = now + hub.session_timeout_s
            if op == Op.CALL:
                await self.on_call(frame.get("id"), d)
            elif op == Op.SUBSCRIBE:
                await self.on_subscribe(frame.get("id"), d)
            elif op == Op.UNSUBSCRIBE:
                self.on_unsubscribe(frame.get("id"), d)
            elif op in (Op.IDENTIFY, Op.RESUME):
                self.close(CloseCode.ALREADY_AUTHENTICATED, f"{op} sent twice")
            else:
                self.close(CloseCode.UNKNOWN_OP, f"unknown op {op[:40]!r}")
            return
        if self.state == SYNCING:  # a frame while identify/resume is still running
            self.close(CloseCode.ALREADY_AUTHENTICATED, f"{op} before ready")
            return
        if op == Op.IDENTIFY:
            async with self._admitted():
                await self.on_identify(d)
        elif op == Op.RESUME:
            async with self._admitted():
                await self.on_resume(d)
        elif op in CLIENT_OPS:
            self.close(CloseCode.NOT_AUTHENTICATED, f"identify first (got {op})")
        else:
            self.close(CloseCode.UNKNOWN_OP, f"unknown op {op[:40]!r}")

    # identify / resume: the Handshake mixin (server/ws/handshake.py) ------------------------

    async def save_session(self) -> None:
        """Store what a resume restores (topics, presence watches, epoch) for `session_ttl_s`."""
        assert self.principal is not None and self.session_id is not None
        record = {
            "user_id": str(self.principal.user_id),
            "topics": sorted(self.topics or ()),
            "watching": [str(u) for u in self.watching or ()],
            "epoch": self.epoch,
        }
        await self.hub.bus.save_session(self.session_id, record, self.hub.session_ttl_s)

    # calls and topics -----------------------------------------------------------------------

    async def on_call(self, call_id: Any, d: dict[str, Any]) -> None:
        assert self.principal is not None
        method = d.get("method")
        if call_id is None:
            self.error(None, ErrorCode.BAD_REQUEST, "a call needs an id", method=method)
            return
        ctx = self.hub.ctx
        # Normally the revocation notice has closed the socket already; this catches a node
        # that missed it (a cached read: no round trip on the hot path).
        if await ctx.revocations.is_revoked(self.principal.user_id, self.principal.session_id):
            self.close(CloseCode.AUTHENTICATION_FAILED, "the session has ended")
            return
        body = await run_call(ctx, self.principal, method, d.get("params"), self)
        label = method if isinstance(method, str) and method in _known_methods() else "unknown"
        metrics.CALLS.labels(label, "ok" if body["ok"] else body["error"]["code"]).inc()
        if not self.closed:
            self.reply(call_id, body)

    async def _authorize(self, topic: str) -> tuple[str, str] | None:
        assert self.principal is not None
        return await check_topic(self.hub.ctx, self.principal, topic)

    async def on_subscribe(self, call_id: Any, d: dict[str, Any]) -> None:
        topic = d.get("topic")
        if not isinstance(topic, str) or not topic or len(topic) > 200:
            self.error(call_id, ErrorCode.UNKNOWN_TOPIC, "subscribe needs a topic", topic=topic)
            return
        topic = canonical_topic(topic)  # the spelling events are published under
        if self.topics is not None and topic in self.topics:
            if call_id is not None:
                self.reply(call_id, {"ok": True, "result": {"topic": topic}})
            return
        if len(self.topics or ()) >= MAX_TOPICS_PER_CONNECTION:
            self.error(
                call_id,
                ErrorCode.TOO_MANY_SUBSCRIPTIONS,
                f"At most {MAX_TOPICS_PER_CONNECTION} topics per connection.",
                topic=topic,
            )
            return
        denied = await self._authorize(topic)
        if self.closed:
            return
        if denied is not None:
            self.error(call_id, denied[0], denied[1], topic=topic)
            return
        self.hub.subscribe(self, topic)
        await self.save_session()
        if call_id is not None:
            self.reply(call_id, {"ok": True, "result": {"topic": topic}})

    def on_unsubscribe(self, call_id: Any, d: dict[str, Any]) -> None:
        topic = d.get("topic")
        topic = canonical_topic(topic) if isinstance(topic, str) else topic
        removed = isinstance(topic, str) and self.hub.unsubscribe(self, topic)
        if removed:
            self.hub.spawn(self.save_session())
        if call_id is not None:
            self.reply(call_id, {"ok": True, "result": {"topic": topic, "removed": removed}})


def _known_methods() -> dict:
    return CALLS
