"""The single-node engine: per-user ordered logs, fan-out and presence in process memory."""

from __future__ import annotations

import time
import uuid
from collections import deque
from collections.abc import Iterable
from typing import Any

from server.bus.base import TopicEvent, TopicListener, UserEvent, UserListener


class MemoryBus:
    def __init__(self, log_depth: int = 1000, log_age_s: float = 3600) -> None:
        self._log_depth = log_depth
        self._log_age_s = log_age_s
        self._seqs: dict[uuid.UUID, int] = {}
        self._logs: dict[uuid.UUID, deque[UserEvent]] = {}
        self.user_listeners: list[UserListener] = []
        self.topic_listeners: list[TopicListener] = []
        self.sessions: dict[uuid.UUID, int] = {}

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def publish_user(
        self, user_ids: Iterable[uuid.UUID], type: str, data: dict[str, Any]
    ) -> list[UserEvent]:
        now = time.time()
        events = []
        for user_id in user_ids:
            seq = self._seqs.get(user_id, 0) + 1
            self._seqs[user_id] = seq
            event = UserEvent(user_id, seq, type, data, now)
            log = self._logs.setdefault(user_id, deque(maxlen=self._log_depth))
            log.append(event)
            events.append(event)
        for event in events:
            for listener in self.user_listeners:
                result = listener(event)
                if result is not None:
                    await result
        return events

    async def publish_topic(self, topic: str, type: str, data: dict[str, Any]) -> None:
        event = TopicEvent(topic, type, data, time.time())
        for listener in self.topic_listeners:
            result = listener(event)
            if result is not None:
                await result

    async def events_after(self, user_id: uuid.UUID, seq: int) -> list[UserEvent] | None:
        last = self._seqs.get(user_id, 0)
        if seq >= last:
            return []
        log = self._logs.get(user_id)
        horizon = time.time() - self._log_age_s
        if not log or log[0].seq > seq + 1 or (log[0].published_at < horizon and log[0].seq > seq):
            return None
        return (
            [e for e in log if e.seq > seq and e.published_at >= horizon]
            if all(e.published_at >= horizon for e in log if e.seq > seq)
            else None
        )

    async def last_seq(self, user_id: uuid.UUID) -> int:
        return self._seqs.get(user_id, 0)

    async def online_users(self, user_ids: Iterable[uuid.UUID]) -> set[uuid.UUID]:
        return {u for u in user_ids if self.sessions.get(u)}
