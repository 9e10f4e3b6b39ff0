"""HTTP fallback transports for clients that cannot hold a socket: long-poll and SSE.

Both carry the same user events with the same `s` as the socket (read from the same per-user
log), as the same envelopes `{"op": "event", "t", "s", "d"}`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from typing import Any

from aiohttp import web

from protocol.codec import json_dumps
from protocol.constants import MAX_TOPICS_PER_CONNECTION, CloseCode, Op
from server.bus.base import UserEvent
from server.domain.auth_tokens import Principal
from server.errors import Gone, NotFound, Unauthorized, ValidationFailed
from server.ws import metrics
from server.ws.calls import canonical_topic, check_topic
from server.ws.frames import Outgoing
from server.ws.hub import Hub

log = logging.getLogger("nexgate.gateway")


def event_envelope(event: UserEvent) -> dict[str, Any]:
    return {"op": Op.EVENT, "t": event.type, "s": event.seq, "d": event.data}


class NotResumable(Gone):
    code = "invalid_session"
    title = "Events no longer available"


class LogReset(NotResumable):
    code = "log_reset"
    title = "Event log reset"


def log_reset_detail(epoch: str) -> str:
    return (
        f"The event log was reset (its epoch is now {epoch}): events counted in the old epoch "
        "may be gone. Refetch state over HTTP and continue from the seq and epoch this endpoint "
        "returns without `after`."
    )


async def _events_or_gone(
    hub: Hub, user_id: uuid.UUID, after: int, epoch: str | None
) -> tuple[str, list[UserEvent]]:
    """The events after `after` in `epoch` (None: whatever the log's epoch is now, for clients
    that predate epochs) and the epoch they count in."""
    current, last = await hub.bus.log_position(user_id)
    if epoch is not None and epoch != current:
        raise LogReset(log_reset_detail(current))
    if after > last:
        raise NotResumable(
            f"after={after} is ahead of the latest event ({last}): refetch state over HTTP and "
            "continue from the seq this endpoint returns without `after`."
        )
    events = await hub.bus.events_after(user_id, after, current) if after < last else []
    if events is None:
        new_epoch, _ = await hub.bus.log_position(user_id)
        if new_epoch != current:
            raise LogReset(log_reset_detail(new_epoch))
        raise NotResumable(
            "The events after this seq are no longer kept: refetch state over HTTP and continue "
            "from the seq this endpoint returns without `after`."
        )
    return current, events


async def long_poll(
    hub: Hub,
    principal: Principal,
    after: int | None,
    timeout_s: float,
    limit: int,
    epoch: str | None = None,
) -> dict[str, Any]:
    """Events after `after` (at most `limit`), at once if any are waiting, else as soon as one
    arrives, else an empty list after `timeout_s`. Without `after`: the current seq, at once.
    Every answer names the epoch its seqs count in; `epoch` pins the cursor to one (410
    log_reset once the log has a new one)."""
    user_id = principal.user_id
    if after is None:
        current, last = await hub.bus.log_position(user_id)
        return {"events": [], "seq": last, "epoch": current}
    deadline = time.monotonic() + timeout_s
    sid = str(principal.session_id) if principal.session_id else None
    while True:
        waiter = hub.add_waiter(user_id, sid)  # before reading the log: no event slips between
        try:
            current, events = await _events_or_gone(hub, user_id, after, epoch)
            epoch = current  # an unpinned cursor is pinned from its first read on
            if events:
                events = events[:limit]
                metrics.frame_out("longpoll_event").inc(len(events))
                return {
                    "events": [event_envelope(e) for e in events],
                    "seq": events[-1].seq,
                    "epoch": current,
                }
            remaining = deadline - time.monotonic()
            if remaining <= 0 or hub.closing:  # draining: answer now, the next poll goes on
                return {"events": [], "seq": after, "epoch": current}
            ended: str | None = None
            with contextlib.suppress(TimeoutError):
                ended = await asyncio.wait_for(waiter, remaining)
            if ended is not None:  # the user's sessions were ended (password reset, ...)
                raise Unauthorized(f"The session has ended ({ended}); log in again.")
        finally:
            hub.remove_waiter(user_id, waiter)


class SseStream:
    """One SSE response: user events (with `id: <s>`) and optional live topics (no id)."""

    binary = False

    def __init__(
        self,
        hub: Hub,
        user_id: uuid.UUID,
        last_s: int,
        epoch: str,
        sign_in_session: str | None = None,
    ) -> None:
        self.hub = hub
        self.user_id = user_id
        self.sign_in_session = sign_in_session
        self.last_s = last_s
        self.epoch = epoch
        self.reset_to: str | None = None  # the new epoch, once the log was reset
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.pending: list[tuple[UserEvent, Outgoing]] | None = []
        self.closed = False
        self.close_code: int | None = None
        self.topics: set[str] | None = None
        self.watching: set[uuid.UUID] | None = None
        self.session_id: str | None = None

    def _put(self, chunk: bytes) -> None:
        if self.closed:
            return
        if self.queue.qsize() >= self.hub.outbound_queue:
            metrics.SLOW_CONSUMERS.inc()
            self.close(CloseCode.SLOW_CONSUMER, "too slow")
            return
        self.queue.put_nowait(chunk)

    def deliver_user(self, event: UserEvent, out: Outgoing) -> None:
        if self.closed:
            return
        if self.pending is not None:
            self.pending.append((event, out))
            return
        if event.epoch != self.epoch:
            self.reset_to = event.epoch
            self.close(CloseCode.LOG_RESET, "event log reset")
            return
        if event.seq <= self.last_s:
            return
        if event.seq != self.last_s + 1:
            self.check_gap()  # a missed delivery: end the stream; the client resumes
            return
        self.last_s = event.seq
        self._put(sse_user_event(self.epoch, event.seq, out.payload(False)))

    def push(self, out: Outgoing) -> None:
        self._put(b"data: %b\n\n" % out.payload(False))

    def check_gap(self) -> None:
        # EventSource reconnects with Last-Event-ID, which replays the gap from the log.
        self.close(CloseCode.SLOW_CONSUMER, "missed events: reconnect")

    def close(self, code: int, reason: str = "") -> None:
        if self.closed:
            return
        self.closed = True
        self.close_code = code
        self.hub.forget(self)
        self.queue.put_nowait(None)


async def _resync(
    request: web.Request, hub: Hub, user_id: uuid.UUID, gone: NotResumable
) -> web.StreamResponse:
    """The 410 for an EventSource, which sees no status codes nor bodies of errors: a stream
    carrying one `event: resync` with the reason and where the log stands (epoch and seq to
    continue from after refetching), then its end."""
    epoch, seq = await hub.bus.log_position(user_id)
    reason = {"code": gone.code, "detail": gone.detail, "seq": seq, "epoch": epoch}
    resp = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
    )
    await resp.prepare(request)
    # A long retry: a client that ignores the event must not hammer the server reconnecting.
    await resp.write(b"retry: 60000\nevent: resync\ndata: %b\n\n" % json_dumps(reason))
    await resp.write_eof()
    return resp


def sse_user_event(epoch: str, seq: int, payload: bytes) -> bytes:
    """A user event on the stream: its id is `<epoch>:<seq>`, so the Last-Event-ID of a
    reconnect names the history it counts in."""
    return b"id: %b:%d\ndata: %b\n\n" % (epoch.encode(), seq, payload)


def _parse_last_event_id(
    request: web.Request, after: int | None, epoch: str | None
) -> tuple[int | None, str | None]:
    raw = request.headers.get("Last-Event-ID")
    if raw is None or raw == "":
        return after, epoch
    id_epoch, _, raw_seq = raw.rpartition(":")
    try:
        value = int(raw_seq)
    except ValueError:
        raise ValidationFailed.field(
            "Last-Event-ID", "must be an event id (<epoch>:<seq>) or a seq"
        ) from None
    if value < 0:
        raise ValidationFailed.field("Last-Event-ID", "must be >= 0")
    return value, (id_epoch or epoch)


async def sse(
    request: web.Request,
    hub: Hub,
    principal: Principal,
    after: int | None,
    topics: list[str],
    epoch: str | None = None,
) -> web.StreamResponse:
    after, epoch = _parse_last_event_id(request, after, epoch)
    topics = list(dict.fromkeys(canonical_topic(t) for t in topics))  # as events are published
    if len(topics) > MAX_TOPICS_PER_CONNECTION:
        raise ValidationFailed.field("topics", f"at most {MAX_TOPICS_PER_CONNECTION} topics")
    for topic in topics:
        denied = await check_topic(hub.ctx, principal, topic)
        if denied is not None:
            raise NotFound(f"{topic}: {denied[1]}")
    user_id = principal.user_id
    backlog: list[UserEvent] = []
    if after is not None:
        try:
            current, backlog = await _events_or_gone(hub, user_id, after, epoch)
        except NotResumable as gone:
            if "text/event-stream" not in request.headers.get("Accept", ""):
                raise
            return await _resync(request, hub, user_id, gone)
        start = after
    else:
        current, start = await hub.bus.log_position(user_id)
    sid = str(principal.session_id) if principal.session_id else None
    stream = SseStream(hub, user_id, start, current, sid)
    first = hub.attach_user(stream)  # live events queue in `pending` while the backlog goes
    for topic in topics:
        hub.subscribe(stream, topic)
    hub.streams.add(stream)
    gauge = metrics.CONNECTIONS.labels("sse", "json")
    gauge.inc()
    resp = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",
        }
    )
    try:
        await resp.prepare(request)
        retry_ms = max(1000, hub.settings.heartbeat_interval_ms // 10)
        await resp.write(b"retry: %d\n: seq %d epoch %b\n\n" % (retry_ms, start, current.encode()))
        for event in backlog:
            if event.seq > stream.last_s:
                stream.last_s = event.seq
                await resp.write(
                    sse_user_event(current, event.seq, json_dumps(event_envelope(event)))
                )
        if first:
            await hub.user_online(user_id)
        pending, stream.pending = stream.pending, None
        for event, out in pending or ():
            stream.deliver_user(event, out)
        keepalive = max(1.0, hub.heartbeat_s)
        while not stream.closed:
            try:
                chunk = await asyncio.wait_for(stream.queue.get(), keepalive)
            except TimeoutError:
                chunk = b": keepalive\n\n"
            if chunk is None:
                break
            await resp.write(chunk)
        if stream.close_code is not None:
            # Ended sessions (4004: password reset, token reuse) are not to be resumed.
            resumable = stream.close_code not in (
                CloseCode.AUTHENTICATION_FAILED,
                CloseCode.LOG_RESET,
            )
            reason: dict[str, Any] = {"code": int(stream.close_code), "resumable": resumable}
            if stream.reset_to is not None:
                # Not resumable with Last-Event-ID: open a new EventSource (without it) after
                # refetching state over HTTP.
                reason.update(reason="log_reset", epoch=stream.reset_to)
            with contextlib.suppress(ConnectionError, RuntimeError):
                await resp.write(b"event: close\ndata: %b\n\n" % json_dumps(reason))
    except ConnectionError:
        pass
    finally:
        gauge.dec()
        stream.closed = True
        hub.streams.discard(stream)
        hub.forget(stream)
        if hub.detach_user(stream):
            try:
                await hub.user_offline(user_id)
            except Exception:
                log.exception("presence update failed")
    return resp
