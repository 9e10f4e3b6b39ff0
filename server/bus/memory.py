"""The single-node engine (`Bus`, server/bus/base.py): per-user ordered logs, fan-out, presence
and sessions in this process's memory. Single-threaded asyncio makes each call atomic: no
method awaits between reading and writing its state."""

from __future__ import annotations

import logging
import secrets
import time
import uuid
from collections import deque
from collections.abc import Iterable
from typing import Any

from server.bus.base import (
    ResyncListener,
    TopicEvent,
    TopicListener,
    UserEvent,
    UserListener,
)

log = logging.getLogger(__name__)


async def _notify(listeners: list, event: Any) -> None:
    for listener in listeners:
        try:
            result = listener(event)
            if result is not None:
                await result
        except Exception:
            # Logged and skipped, as the Redis engine does: the event is already in the log.
            log.exception("bus listener failed")


class MemoryBus:
    def __init__(self, log_depth: int = 1000, log_age_s: float = 3600) -> None:
        self.node_id = "memory"
        # The logs live as long as this process: a restarted server has a new epoch.
        self.epoch = f"{int(time.time() * 1000):x}{secrets.token_hex(3)}"
        self._log_depth = max(1, log_depth)
        self._log_age_s = log_age_s
        self._seqs: dict[uuid.UUID, int] = {}
        self._logs: dict[uuid.UUID, deque[UserEvent]] = {}
        self._presence: dict[uuid.UUID, int] = {}
        self._sessions: dict[str, tuple[float, dict[str, Any]]] = {}
        # user -> {session id: expiry (monotonic)}
        self._revoked: dict[uuid.UUID, dict[str, float]] = {}
        self._last_session_sweep = 0.0
        self._tickets: dict[str, tuple[float, dict[str, Any]]] = {}
        self._last_ticket_sweep = 0.0
        self._last_log_sweep = time.time()
        self.user_listeners: list[UserListener] = []
        self.topic_listeners: list[TopicListener] = []
        self.resync_listeners: list[ResyncListener] = []

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def ping(self) -> None:
        pass

    async def publish_user(
        self, user_ids: Iterable[uuid.UUID], type: str, data: dict[str, Any]
    ) -> list[UserEvent]:
        now = time.time()
        events = []
        for user_id in dict.fromkeys(user_ids):
            seq = self._seqs.get(user_id, 0) + 1
            self._seqs[user_id] = seq
            event = UserEvent(user_id, seq, type, data, now, epoch=self.epoch)
            log = self._logs.get(user_id)
            if log is None:
                log = self._logs[user_id] = deque(maxlen=self._log_depth)
            log.append(event)
            events.append(event)
        self._sweep_logs(now)
        for event in events:
            await _notify(self.user_listeners, event)
        return events

    def _sweep_logs(self, now: float) -> None:
        """Drop events older than the resume window, so idle users' logs do not pin memory
        (their seq counters stay: seqs never go back)."""
        if now - self._last_log_sweep < min(60.0, self._log_age_s):
            return
        self._last_log_sweep = now
        horizon = now - self._log_age_s
        for user_id in list(self._logs):
            log = self._logs[user_id]
            while log and log[0].published_at < horizon:
                log.popleft()
            if not log:
                del self._logs[user_id]

    async def publish_topic(self, topic: str, type: str, data: dict[str, Any]) -> None:
        await _notify(self.topic_listeners, TopicEvent(topic, type, data, time.time()))

    async def events_after(
        self, user_id: uuid.UUID, seq: int, epoch: str | None = None
    ) -> list[UserEvent] | None:
        if epoch is not None and epoch != self.epoch:
            return None
        last = self._seqs.get(user_id, 0)
        if seq >= last:
            return []
        log = self._logs.get(user_id)
        if not log or log[0].seq > seq + 1:
            return None
        events = [e for e in log if e.seq > seq]
        if events[0].published_at < time.time() - self._log_age_s:
            return None
        return events

    async def log_position(self, user_id: uuid.UUID) -> tuple[str, int]:
        return self.epoch, self._seqs.get(user_id, 0)

    async def last_seq(self, user_id: uuid.UUID) -> int:
        return self._seqs.get(user_id, 0)

    async def last_seqs(self, user_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, int]:
        return {u: self._seqs.get(u, 0) for u in user_ids}

    async def online_users(self, user_ids: Iterable[uuid.UUID]) -> set[uuid.UUID]:
        return {u for u in user_ids if self._presence.get(u)}

    async def presence_join(self, user_id: uuid.UUID) -> bool:
        count = self._presence.get(user_id, 0)
        self._presence[user_id] = count + 1
        return count == 0

    async def presence_leave(self, user_id: uuid.UUID) -> bool:
        count = self._presence.get(user_id, 0) - 1
        if count <= 0:
            self._presence.pop(user_id, None)
            return True
        self._presence[user_id] = count
        return False

    async def presence_refresh(self, user_ids: Iterable[uuid.UUID]) -> None:
        pass

    async def save_session(self, session_id: str, record: dict[str, Any], ttl_s: float) -> None:
        now = time.monotonic()
        self._sessions[session_id] = (now + ttl_s, record)
        if now - self._last_session_sweep > 60:
            self._last_session_sweep = now
            self._sessions = {k: v for k, v in self._sessions.items() if v[0] > now}

    async def load_session(self, session_id: str) -> dict[str, Any] | None:
        entry = self._sessions.get(session_id)
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]

    async def revoke_sessions(
        self, user_id: uuid.UUID, session_ids: Iterable[str], ttl_s: float
    ) -> None:
        now = time.monotonic()
        entries = {k: v for k, v in self._revoked.get(user_id, {}).items() if v > now}
        for session_id in session_ids:
            entries[str(session_id)] = now + ttl_s
        self._revoked[user_id] = entries

    async def revoked_sessions(self, user_id: uuid.UUID) -> frozenset[str]:
        entries = self._revoked.get(user_id)
        if not entries:
            return frozenset()
        now = time.monotonic()
        live = frozenset(k for k, v in entries.items() if v > now)
        if not live:
            del self._revoked[user_id]
        return live

    async def put_ticket(self, key: str, record: dict[str, Any], ttl_s: float) -> None:
        now = time.monotonic()
        if now - self._last_ticket_sweep > 10:  # tickets nobody redeemed do not pile up
            self._last_ticket_sweep = now
            self._tickets = {k: v for k, v in self._tickets.items() if v[0] > now}
        self._tickets[key] = (now + ttl_s, record)

    async def take_ticket(self, key: str) -> dict[str, Any] | None:
        entry = self._tickets.pop(key, None)
        if entry is None or entry[0] <= time.monotonic():
            return None
        return entry[1]
