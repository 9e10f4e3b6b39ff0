"""One gateway socket: the connection state machine (hello → identify / resume → ready),
heartbeats, the frame budget, calls, subscriptions and the bounded outbound path.

Outbound frames are written straight to the transport while its buffer is below the high-water
mark; past it they wait in a bounded per-connection backlog drained by a flusher task that only
exists while the client is behind. A backlog over `outbound_queue` frames drops the client with
SLOW_CONSUMER (4010): it reconnects and resumes, and server memory stays bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import WSMsgType, web

from protocol.codec import DecodeError, JsonCodec, MsgpackCodec
from protocol.constants import (
    CLIENT_OPS,
    MAX_TOPICS_PER_CONNECTION,
    PROTOCOL_VERSION,
    CloseCode,
    ErrorCode,
    Op,
)
from server.bus.base import UserEvent
from server.bus.faults import is_bus_failure
from server.domain import accounts
from server.domain.auth_tokens import Principal
from server.domain.presence import hidden_from_viewer
from server.errors import BadRequest, Unauthorized
from server.ws import metrics
from server.ws.calls import CALLS, canonical_topic, check_topic, run_call
from server.ws.frames import Outgoing, encode, user_event_frame
from server.ws.hub import HUB, Hub

log = logging.getLogger("nexgate.gateway")

NEW, SYNCING, READY = 0, 1, 2
HIGH_WATER = 64 * 1024
CLOSE_TIMEOUT_S = 5.0
_WS_CODE_MAP = {1009: CloseCode.FRAME_TOO_LARGE, 1007: CloseCode.DECODE_ERROR}


class GatewaySocket(web.WebSocketResponse):
    """aiohttp's socket, closing with the protocol's codes instead of RFC ones where the
    protocol has its own (frame too large → 4011, invalid UTF-8 → 4002)."""

    async def close(self, *, code: int = 1000, message: bytes = b"", drain: bool = True) -> bool:
        mapped = _WS_CODE_MAP.get(code)
        if mapped is not None:
            code = int(mapped)
            message = b"frame too large" if mapped == CloseCode.FRAME_TOO_LARGE else b"bad utf-8"
            metrics.CLOSES.labels(str(code)).inc()
        return await super().close(code=code, message=message, drain=drain)


def _reason(text: str) -> str:
    return text.encode()[:120].decode(errors="ignore")


class Connection:
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

    def __init__(self, hub: Hub, ws: GatewaySocket, transport: Any, writer: Any, binary: bool):
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

    async def _authenticate(self, token: Any, *, check_account: bool = True) -> Principal | None:
        if not isinstance(token, str) or not token:
            self.close(CloseCode.AUTHENTICATION_FAILED, "identify needs a token")
            return None
        try:
            return await accounts.authenticate(self.hub.ctx, token, check_account=check_account)
        except Unauthorized as exc:
            self.close(CloseCode.AUTHENTICATION_FAILED, exc.detail)
            return None

    @contextlib.asynccontextmanager
    async def _admitted(self) -> AsyncIterator[None]:
        """Admission control for handshakes: at most `gateway.max_concurrent_syncs` identify /
        resume run at once on this node; the others wait in arrival order (asyncio.Semaphore
        is FIFO). A storm of 1,000 resumes then takes its turns between the sends of the
        connected users instead of all at once ahead of them. Waiting does not count against
        the identify deadline (the client did send its identify in time)."""
        self.state = SYNCING  # a second identify / resume while queued is still 4005
        hub = self.hub
        queued = hub.syncs.locked()
        if queued:
            metrics.SYNCS_QUEUED.inc()
        started = time.monotonic()
        async with hub.syncs:
            if queued:
                metrics.SYNCS_QUEUED.dec()
            metrics.SYNC_WAIT.observe(time.monotonic() - started)
            self.deadline = max(self.deadline, time.monotonic() + hub.hello_timeout_s)
            if self.closed:
                yield
                return
            metrics.SYNCS_RUNNING.inc()
            try:
                yield
            finally:
                metrics.SYNCS_RUNNING.dec()

    def _become(self, principal: Principal, session_id: str, seq: int) -> bool:
        """Enter SYNCING as `principal`: live events start queueing in `pending`. True if this
        is the node's first session of the user."""
        self.principal = principal
        self.user_id = principal.user_id
        self.session_id = session_id
        self.sign_in_session = str(principal.session_id) if principal.session_id else None
        self.last_s = seq
        self.pending = []
        self.state = SYNCING
        previous = self.hub.sessions.get(session_id)
        if previous is not None and previous is not self:
            previous.close(CloseCode.SESSION_REPLACED, "the session was resumed elsewhere")
        self.hub.sessions[session_id] = self
        first = self.hub.attach_user(self)
        self._enforce_socket_cap()
        return first

    def _enforce_socket_cap(self) -> None:
        """Past `max_sockets_per_user` live sockets of this user on this node, close the oldest
        (4013): a runaway or abusive client cannot pile up sockets (each one costs memory and
        a frame budget of its own); a legitimate new device still gets in."""
        assert self.user_id is not None
        sockets = [s for s in self.hub.users.get(self.user_id, ()) if isinstance(s, Connection)]
        excess = len(sockets) - max(1, self.hub.settings.max_sockets_per_user)
        for oldest in sockets[: max(0, excess)]:  # attach order: oldest first
            oldest.close(CloseCode.TOO_MANY_SOCKETS, "too many sockets: this was the oldest")

    def _go_ready(self) -> None:
        self.state = READY
        self.deadline = time.monotonic() + self.hub.session_timeout_s
        self.flush_pending()

    async def save_session(self) -> None:
        assert self.principal is not None and self.session_id is not None
        record = {
            "user_id": str(self.principal.user_id),
            "topics": sorted(self.topics or ()),
            "watching": [str(u) for u in self.watching or ()],
            "epoch": self.epoch,
        }
        await self.hub.bus.save_session(self.session_id, record, self.hub.session_ttl_s)

    async def on_identify(self, d: dict[str, Any]) -> None:
        self.state = SYNCING
        principal = await self._authenticate(d.get("token"))
        if principal is None or self.closed:
            return
        hub = self.hub
        first = self._become(principal, secrets.token_hex(16), 0)
        try:
            self.epoch, self.last_s = await hub.bus.log_position(principal.user_id)
            await self.save_session()
        except Exception as exc:
            if not is_bus_failure(exc):
                log.exception("identify failed")
            self.close(
                CloseCode.UNKNOWN_ERROR,
                "event bus unavailable: retry soon"
                if is_bus_failure(exc)
                else "server error: try again",
            )
            return
        self.write_frame(
            {
                "op": Op.READY,
                "d": {
                    "session_id": self.session_id,
                    "user": {
                        "id": str(principal.user_id),
                        "username": principal.username,
                        "roles": list(principal.roles),
                    },
                    "seq": self.last_s,
                    "epoch": self.epoch,
                },
            }
        )
        self._go_ready()
        if first:
            await hub.user_online(principal.user_id)

    async def on_resume(self, d: dict[str, Any]) -> None:
        session_id, seq, epoch = d.get("session_id"), d.get("seq"), d.get("epoch")
        if (
            not isinstance(session_id, str)
            or not isinstance(epoch, str | None)
            or not isinstance(seq, int)
            or isinstance(seq, bool)
            or seq < 0
            or len(session_id) > 64
        ):
            self.close(CloseCode.DECODE_ERROR, "resume needs {token, session_id, seq >= 0}")
            return
        self.state = SYNCING
        # No account read per resume: the session being resumed began with an identify that
        # read the account, and deactivating an account revokes its sign-in sessions, which
        # the (cached) revocation check here still catches (4004).
        principal = await self._authenticate(d.get("token"), check_account=False)
        if principal is None or self.closed:
            return
        hub = self.hub
        record = await hub.bus.load_session(session_id)
        if record is None or record.get("user_id") != str(principal.user_id):
            self._invalid_session("unknown or expired session", "session_unknown")
            return
        current, last = await hub.bus.log_position(principal.user_id)
        # The client's epoch (or, from older clients, the one its session was saved with): a
        # seq counted in a lost history must never select events of the new one.
        cursor_epoch = epoch if epoch is not None else record.get("epoch")
        if cursor_epoch is not None and cursor_epoch != current:
            self._invalid_session(
                "the event log was reset: refetch over HTTP", "log_reset", epoch=current
            )
            return
        if seq > last:
            metrics.RESUMES.labels("invalid_seq").inc()
            self.close(CloseCode.INVALID_SEQ, f"seq {seq} is ahead of the server's {last}")
            return
        first = self._become(principal, session_id, seq)
        self.epoch = current
        try:
            ok = await self.send_log()
        except Exception:
            log.exception("resume failed")
            ok = False
        if not ok:
            self._unbecome()
            self._invalid_session("the events after seq are no longer kept", "log_trimmed")
            return
        replayed = self.last_s - seq
        restored = await self._restore(record)
        await self.save_session()
        self.write_frame(
            {
                "op": Op.RESUMED,
                "d": {
                    "session_id": session_id,
                    "seq": self.last_s,
                    "epoch": self.epoch,
                    "replayed": replayed,
                    "topics": restored,
                },
            }
        )
        metrics.RESUMES.labels("ok").inc()
        self._go_ready()
        if first:
            await hub.user_online(principal.user_id)

    def _unbecome(self) -> None:
        self.hub.detach_user(self)
        self.hub.forget(self)
        self.principal = self.user_id = self.session_id = self.sign_in_session = None
        self.topics = self.watching = None
        self.pending = None
        self.state = NEW

    def _invalid_session(self, reason: str, code: str, **extra: Any) -> None:
        """Not resumable: the client refetches state over HTTP and sends identify on this
        socket (or reconnects). The identify deadline starts again."""
        metrics.RESUMES.labels("failed").inc()
        self.state = NEW
        self.deadline = time.monotonic() + self.hub.hello_timeout_s
        self.write_frame(
            {
                "op": Op.INVALID_SESSION,
                "d": {"resumable": False, "code": code, "reason": reason, **extra},
            }
        )

    async def _restore(self, record: dict[str, Any]) -> list[str]:
        """Re-subscribe the session's topics and presence watches, re-checking access."""
        assert self.principal is not None
        restored = []
        for topic in record.get("topics") or ():
            topic = canonical_topic(topic) if isinstance(topic, str) else None
            if topic is not None and await self._authorize(topic) is None:
                self.hub.subscribe(self, topic)
                restored.append(topic)
        watching = []
        for raw in record.get("watching") or ():
            try:
                watching.append(uuid.UUID(raw))
            except ValueError:
                continue
        if watching:
            hidden = await hidden_from_viewer(self.hub.ctx, self.principal.user_id, watching)
            self.hub.watch(self, [u for u in watching if u not in hidden])
        return restored

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


def hello_frame(hub: Hub, encoding: str) -> dict[str, Any]:
    return {
        "op": Op.HELLO,
        "d": {
            "heartbeat_interval_ms": hub.settings.heartbeat_interval_ms,
            "session_timeout_ms": int(hub.session_timeout_s * 1000),
            "identify_timeout_ms": int(hub.hello_timeout_s * 1000),
            "protocol_version": PROTOCOL_VERSION,
            "max_frame_bytes": hub.max_frame_bytes,
            "encoding": encoding,
        },
    }


_AFTER_CLOSE: set[asyncio.Future] = set()


async def _after_close(hub: Hub, conn: Connection, last: bool) -> None:
    try:
        if conn.close_code != CloseCode.SESSION_REPLACED:
            await conn.save_session()  # resumable for the log age from now
        if last:
            assert conn.user_id is not None  # scheduled only for an identified connection
            await hub.user_offline(conn.user_id)
    except Exception:
        log.exception("session bookkeeping failed")


async def serve_socket(request: web.Request, encoding: str) -> web.StreamResponse:
    """GET /api/gateway/ws: upgrade, say hello, run the state machine until the socket ends.
    `encoding` ("json" / "msgpack") and the protocol version were validated by the route."""
    hub = request.app[HUB]
    if encoding not in ("json", "msgpack"):
        raise BadRequest("encoding must be 'json' or 'msgpack'.")
    if hub.closing:
        raise web.HTTPServiceUnavailable(text="The server is restarting.")
    ws = GatewaySocket(
        timeout=CLOSE_TIMEOUT_S,
        autoping=True,
        compress=False,
        max_msg_size=hub.max_frame_bytes,
        decode_text=False,
    )
    if not ws.can_prepare(request):
        raise web.HTTPUpgradeRequired(
            text="This endpoint speaks WebSocket: connect with an 'Upgrade: websocket' request.",
            headers={"Upgrade": "websocket"},
        )
    writer = await ws.prepare(request)
    binary = encoding == "msgpack"
    conn = Connection(hub, ws, request.transport, writer, binary)
    hub.conns.add(conn)
    gauge = metrics.CONNECTIONS.labels("websocket", encoding)
    gauge.inc()
    try:
        conn.write_frame(hello_frame(hub, encoding))
        await conn.run()
    finally:
        gauge.dec()
        hub.conns.discard(conn)
        if not conn.closed:
            conn.closed = True
            hub.forget(conn)
        if conn.flusher is not None:
            conn.flusher.cancel()
        if conn.catcher is not None:
            conn.catcher.cancel()
        if conn.user_id is not None:
            last = hub.detach_user(conn)
            # Shielded: a handler cancelled as its socket goes away must still save the session
            # and leave presence, or the user would look online until presence_ttl_s expires.
            task = asyncio.ensure_future(_after_close(hub, conn, last))
            _AFTER_CLOSE.add(task)
            task.add_done_callback(_AFTER_CLOSE.discard)
            await asyncio.shield(task)
        if conn.closer is not None:
            await asyncio.shield(conn.closer)
    return ws
