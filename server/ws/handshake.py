"""The gateway handshake: identify / resume up to ready, on one socket (server/ws/connection.py).

Admission control (at most `gateway.max_concurrent_syncs` handshakes at once per node), the
token check, entering a session (replacing one resumed elsewhere, the per-user socket cap),
replaying the log on resume, restoring the session's topics and presence watches, and
invalid_session when a session cannot be resumed. A mixin of `Connection`: it holds no state
of its own (the attributes below are the connection's slots) and stays off the per-event path.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import time
import uuid
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from protocol.constants import CloseCode, Op
from server.bus.base import UserEvent
from server.bus.faults import is_bus_failure
from server.domain import accounts
from server.domain.auth_tokens import Principal
from server.domain.presence import hidden_from_viewer
from server.errors import Unauthorized
from server.ws import metrics
from server.ws.calls import canonical_topic
from server.ws.frames import Outgoing
from server.ws.hub import Hub

log = logging.getLogger("nexgate.gateway")

# The connection's states: hello sent → identify / resume running → ready.
NEW, SYNCING, READY = 0, 1, 2


class Handshake:
    """identify / resume for `Connection` (which declares the slots and the methods below)."""

    # An empty __slots__ keeps Connection (all slots) free of a per-instance __dict__. Only at
    # run time: mypy would read it as "this class assigns no attributes" and reject the
    # assignments below; it checks them against the declarations instead (Connection's slots).
    if not TYPE_CHECKING:
        __slots__ = ()

    hub: Hub
    state: int
    closed: bool
    deadline: float
    principal: Principal | None
    user_id: uuid.UUID | None
    session_id: str | None
    sign_in_session: str | None
    last_s: int
    epoch: str
    pending: list[tuple[UserEvent, Outgoing]] | None
    topics: set[str] | None
    watching: set[uuid.UUID] | None

    if TYPE_CHECKING:  # provided by Connection

        def close(self, code: int, reason: str = "") -> None: ...
        def write_frame(self, frame: dict[str, Any]) -> None: ...
        def flush_pending(self) -> None: ...
        def deliver_user(self, event: UserEvent, out: Outgoing) -> None: ...
        async def send_log(self) -> bool: ...
        async def save_session(self) -> None: ...
        async def _authorize(self, topic: str) -> tuple[str, str] | None: ...

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
        # Every gateway Connection is a Handshake; the user's long-poll / SSE sessions are not.
        sockets = [s for s in self.hub.users.get(self.user_id, ()) if isinstance(s, Handshake)]
        excess = len(sockets) - max(1, self.hub.settings.max_sockets_per_user)
        for oldest in sockets[: max(0, excess)]:  # attach order: oldest first
            oldest.close(CloseCode.TOO_MANY_SOCKETS, "too many sockets: this was the oldest")

    def _go_ready(self) -> None:
        self.state = READY
        self.deadline = time.monotonic() + self.hub.session_timeout_s
        self.flush_pending()

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
