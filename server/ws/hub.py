"""The node-local hub: which sockets (and SSE streams) of which users and topics live on this
node, fan-out of bus events to them, presence, and one sweeper task for every deadline."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Iterable
from typing import Any, Protocol

from aiohttp import web

from protocol.constants import CloseCode, Event, Op
from server.bus.base import TopicEvent, UserEvent
from server.config import GatewaySettings
from server.domain.auth_tokens import Principal
from server.domain.context import Context
from server.domain.events import CONTROL_TOPIC_PREFIX, DISCONNECT, TOPICS_RECHECK
from server.domain.presence import hidden_from
from server.ws import metrics
from server.ws.calls import still_allowed
from server.ws.frames import Outgoing, topic_event_frame, user_event_frame

log = logging.getLogger("nexgate.gateway")

PRESENCE_PREFIX = "presence:"


class UserSubscriber(Protocol):
    @property
    def user_id(self) -> uuid.UUID | None: ...  # None: a connection not (or no longer) identified

    @property
    def sign_in_session(self) -> str | None: ...  # the `sid` it was opened with

    def deliver_user(self, event: UserEvent, out: Outgoing) -> None: ...

    def close(self, code: int, reason: str = "") -> None: ...


class Hub:
    def __init__(self, ctx: Context, settings: GatewaySettings) -> None:
        self.ctx = ctx
        self.bus = ctx.bus
        self.settings = settings
        self.heartbeat_s = settings.heartbeat_interval_ms / 1000
        self.session_timeout_s = 2 * self.heartbeat_s
        self.hello_timeout_s = settings.hello_timeout_s
        self.max_frame_bytes = settings.max_frame_bytes
        self.frame_budget = settings.frame_budget
        self.frame_budget_window_s = settings.frame_budget_window_s
        self.outbound_queue = settings.outbound_queue
        self.session_ttl_s = float(settings.resume_log_age_s)
        # Admission control of identify / resume (server/ws/handshake.py, Handshake._admitted).
        self.syncs = asyncio.Semaphore(max(1, settings.max_concurrent_syncs))
        self.conns: set[Any] = set()  # every open socket (the sweeper walks these)
        self.users: dict[uuid.UUID, list[UserSubscriber]] = {}
        self.topics: dict[str, set[Any]] = {}
        self.watchers: dict[uuid.UUID, set[Any]] = {}
        self.sessions: dict[str, Any] = {}
        # Long-polls waiting for a user's next event: resolved with None by an event, with the
        # reason by an end of the user's sessions (the poll then answers 401).
        self.waiters: dict[uuid.UUID, list[tuple[asyncio.Future[str | None], str | None]]] = {}
        self.streams: set[Any] = set()  # SSE streams
        self._tasks: set[asyncio.Task[Any]] = set()
        self._sweeper: asyncio.Task[None] | None = None
        self.closing = False

    # lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        self.bus.user_listeners.append(self.on_user_event)
        self.bus.topic_listeners.append(self.on_topic_event)
        self.bus.resync_listeners.append(self.resync)
        self._sweeper = asyncio.create_task(self._sweep_forever(), name="gateway-sweeper")

    async def shutdown(self) -> None:
        """Tell every client to reconnect elsewhere, close them all with SERVER_RESTART."""
        self.closing = True
        for conn in list(self.conns):
            conn.write_frame({"op": Op.RECONNECT, "d": {"reason": "server restart"}})
            conn.close(CloseCode.SERVER_RESTART, "server restart: reconnect and resume")
        for stream in list(self.streams):
            stream.close(CloseCode.SERVER_RESTART, "server restart")
        closers = [c.closer for c in self.conns if c.closer is not None]
        if closers:
            await asyncio.wait(closers, timeout=3)

    async def drain(self, spread_s: float) -> None:
        """A rolling deploy: refuse new sockets, end waiting long-polls (they answer at once,
        empty), and ask every connected client to reconnect elsewhere, one after another over
        `spread_s`, so the remaining nodes take them over gradually, not in one storm."""
        self.closing = True
        for waiters in list(self.waiters.values()):
            for fut, _ in waiters:
                if not fut.done():
                    fut.set_result(None)
        subscribers = [c for c in self.conns if not c.closed] + list(self.streams)
        if not subscribers:
            return
        loop = asyncio.get_running_loop()
        start = loop.time()
        step = spread_s / len(subscribers)
        for i, sub in enumerate(subscribers):
            due = start + i * step
            if due - loop.time() > 0.005:
                await asyncio.sleep(due - loop.time())
            if sub.closed:
                continue
            if sub in self.conns:
                sub.write_frame({"op": Op.RECONNECT, "d": {"reason": "draining"}})
            sub.close(CloseCode.SERVER_RESTART, "draining: reconnect (any node) and resume")
        metrics.DRAINED.inc(len(subscribers))

    async def stop(self) -> None:
        await self.shutdown()
        with contextlib.suppress(ValueError):
            self.bus.user_listeners.remove(self.on_user_event)
        with contextlib.suppress(ValueError):
            self.bus.topic_listeners.remove(self.on_topic_event)
        with contextlib.suppress(ValueError):
            self.bus.resync_listeners.remove(self.resync)
        for task in [self._sweeper, *self._tasks]:
            if task is not None:
                task.cancel()
        await asyncio.gather(
            *(t for t in [self._sweeper, *self._tasks] if t is not None), return_exceptions=True
        )

    def spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # registration -------------------------------------------------------------------------

    def attach_user(self, sub: UserSubscriber) -> bool:
        """Start delivering `sub`'s user events to it. True if it is this node's first."""
        user_id = sub.user_id
        assert user_id is not None  # attached only once identified
        subs = self.users.get(user_id)
        if subs is None:
            self.users[user_id] = [sub]
            return True
        if sub not in subs:
            subs.append(sub)
        return False

    def detach_user(self, sub: UserSubscriber) -> bool:
        """Stop delivering to `sub`. True if it was this node's last of that user."""
        user_id = sub.user_id
        if user_id is None:  # not identified: never attached
            return False
        subs = self.users.get(user_id)
        if not subs or sub not in subs:
            return False
        subs.remove(sub)
        if subs:
            return False
        del self.users[user_id]
        return True

    async def user_online(self, user_id: uuid.UUID) -> None:
        if await self.bus.presence_join(user_id):
            await self.publish_presence(user_id, "online")

    async def user_offline(self, user_id: uuid.UUID) -> None:
        if user_id in self.users:  # another local session came up meanwhile
            return
        if await self.bus.presence_leave(user_id):
            await self.publish_presence(user_id, "offline")

    async def publish_presence(self, user_id: uuid.UUID, status: str) -> None:
        await self.bus.publish_topic(
            f"{PRESENCE_PREFIX}{user_id}",
            Event.PRESENCE_UPDATED,
            {"user_id": str(user_id), "status": status},
        )

    def subscribe(self, conn: Any, topic: str) -> None:
        subs = self.topics.get(topic)
        if subs is None:
            subs = self.topics[topic] = set()
        subs.add(conn)
        if conn.topics is None:
            conn.topics = set()
        conn.topics.add(topic)

    def unsubscribe(self, conn: Any, topic: str) -> bool:
        if conn.topics is None or topic not in conn.topics:
            return False
        conn.topics.discard(topic)
        subs = self.topics.get(topic)
        if subs is not None:
            subs.discard(conn)
            if not subs:
                del self.topics[topic]
        return True

    def watch(self, conn: Any, user_ids: Iterable[uuid.UUID]) -> None:
        if conn.watching is None:
            conn.watching = set()
        for user_id in user_ids:
            conn.watching.add(user_id)
            subs = self.watchers.get(user_id)
            if subs is None:
                subs = self.watchers[user_id] = set()
            subs.add(conn)

    def forget(self, conn: Any) -> None:
        """Drop a closing socket from every topic and watch list (sync, idempotent)."""
        # conn.topics / conn.watching stay as they are: the session record keeps them.
        for topic in conn.topics or ():
            subs = self.topics.get(topic)
            if subs is not None:
                subs.discard(conn)
                if not subs:
                    del self.topics[topic]
        for user_id in conn.watching or ():
            subs = self.watchers.get(user_id)
            if subs is not None:
                subs.discard(conn)
                if not subs:
                    del self.watchers[user_id]
        session_id = conn.session_id
        if session_id is not None and self.sessions.get(session_id) is conn:
            del self.sessions[session_id]

    def add_waiter(
        self, user_id: uuid.UUID, sign_in_session: str | None = None
    ) -> asyncio.Future[str | None]:
        """Long-poll: a future resolved by the next event for `user_id` on this node (None), or
        by the end of its sign-in session (the reason)."""
        fut: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
        self.waiters.setdefault(user_id, []).append((fut, sign_in_session))
        return fut

    def remove_waiter(self, user_id: uuid.UUID, fut: asyncio.Future[str | None]) -> None:
        waiters = self.waiters.get(user_id)
        if waiters is None:
            return
        waiters[:] = [w for w in waiters if w[0] is not fut]
        if not waiters:
            del self.waiters[user_id]

    # fan-out -----------------------------------------------------------------------------

    def on_user_event(self, event: UserEvent) -> None:
        waiters = self.waiters.pop(event.user_id, None)
        if waiters:
            for fut, _ in waiters:
                if not fut.done():
                    fut.set_result(None)
        subs = self.users.get(event.user_id)
        if not subs:
            return
        out = user_event_frame(event.type, event.seq, event.data, event.data_json)
        for sub in tuple(subs):
            sub.deliver_user(event, out)
        if event.published_at:
            metrics.USER_LATENCY.observe(max(0.0, time.time() - event.published_at))

    def on_topic_event(self, event: TopicEvent) -> None:
        topic = event.topic
        if topic.startswith(PRESENCE_PREFIX):
            self._on_presence(event)
            return
        if topic.startswith(CONTROL_TOPIC_PREFIX):
            self._on_control(event)
            return
        subs = self.topics.get(topic)
        if not subs:
            return
        out = topic_event_frame(topic, event.type, event.data, event.data_json)
        n = 0
        for conn in tuple(subs):
            conn.push(out)
            n += 1
        metrics.frame_out(Op.EVENT).inc(n)
        if event.published_at:
            metrics.TOPIC_LATENCY.observe(max(0.0, time.time() - event.published_at))

    def _on_presence(self, event: TopicEvent) -> None:
        try:
            user_id = uuid.UUID(event.topic[len(PRESENCE_PREFIX) :])
        except ValueError:
            return
        subs = self.watchers.get(user_id)
        if subs:
            self.spawn(self._deliver_presence(user_id, event, list(subs)))

    async def _deliver_presence(self, user_id: uuid.UUID, event: TopicEvent, subs: list) -> None:
        """Presence goes only to watchers who may see the user: a block either way (even one
        made after the watch began) silently stops it."""
        hidden = await hidden_from(self.ctx, user_id, [c.user_id for c in subs])
        out = Outgoing({"op": Op.EVENT, "t": event.type, "d": event.data})
        n = 0
        for conn in subs:
            if conn.user_id not in hidden and not conn.closed:
                conn.push(out)
                n += 1
        metrics.frame_out(Op.EVENT).inc(n)

    def _on_control(self, event: TopicEvent) -> None:
        if event.type == TOPICS_RECHECK:
            try:
                checked = uuid.UUID(str(event.data.get("user_id")))
            except ValueError:
                return
            if checked in self.users:
                self.spawn(self._recheck_topics(checked))
            return
        if event.type == DISCONNECT:
            try:
                user_id = uuid.UUID(str(event.data.get("user_id")))
            except ValueError:
                return
            code = int(event.data.get("code") or CloseCode.AUTHENTICATION_FAILED)
            reason = str(event.data.get("reason") or "session revoked")
            # The user's live subscribers on this node (sockets and SSE streams, both in
            # `users`, and long-polls waiting for an event, which answer 401): those of the
            # sign-in sessions named, or all of them when none are.
            sessions = event.data.get("sessions")
            ended = set(map(str, sessions)) if isinstance(sessions, list) else None
            for sub in list(self.users.get(user_id, ())):
                if ended is None or sub.sign_in_session in ended:
                    sub.close(code, reason)
            kept = []
            for fut, sid in self.waiters.pop(user_id, ()):
                if ended is not None and sid not in ended:
                    kept.append((fut, sid))
                elif not fut.done():
                    fut.set_result(reason)
            if kept:
                self.waiters[user_id] = kept

    async def _recheck_topics(self, user_id: uuid.UUID) -> None:
        """Drop the user's live topic subscriptions on this node that access now refuses."""
        # Topic authorizers decide by the user id alone (server/domain/access.py).
        principal = Principal(user_id, "")
        verdicts: dict[str, bool] = {}
        for sub in list(self.users.get(user_id, ())):
            for topic in sorted(getattr(sub, "topics", None) or ()):
                if topic not in verdicts:
                    verdicts[topic] = await still_allowed(self.ctx, principal, topic)
                if not verdicts[topic]:
                    self.unsubscribe(sub, topic)

    def resync(self) -> None:
        """Deliveries may have been lost (bus reconnect): let every socket catch up from the
        log."""
        for conn in list(self.conns):
            if conn.user_id is not None and not conn.closed:
                conn.check_gap()
        for stream in list(self.streams):
            stream.check_gap()

    # the sweeper ----------------------------------------------------------------------------

    async def _sweep_forever(self) -> None:
        tick = max(0.02, min(1.0, self.heartbeat_s / 4, self.hello_timeout_s / 2))
        presence_every = max(1.0, self.settings.presence_ttl_s / 3)
        next_presence = time.monotonic() + presence_every
        while True:
            await asyncio.sleep(tick)
            now = time.monotonic()
            try:
                self.sweep(now)
                if now >= next_presence:
                    next_presence = now + presence_every
                    if self.users:
                        await self.bus.presence_refresh(list(self.users))
            except Exception:
                log.exception("gateway sweep failed")

    def sweep(self, now: float) -> None:
        for conn in [c for c in self.conns if c.deadline < now]:
            if conn.closed:
                continue
            if conn.user_id is None:
                conn.close(CloseCode.NOT_AUTHENTICATED, "identify timeout")
            else:
                conn.close(CloseCode.SESSION_TIMEOUT, "no heartbeat for two intervals")


HUB = web.AppKey("gateway_hub", Hub)
