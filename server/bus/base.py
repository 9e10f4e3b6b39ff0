"""The Bus interface every engine implements (Centrifugo-style broker + presence)."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(slots=True)
class UserEvent:
    """One event in a user's ordered log: `seq` is per user, shared by all devices and nodes."""

    user_id: uuid.UUID
    seq: int
    type: str
    data: dict[str, Any]
    published_at: float = field(default=0.0)


@dataclass(slots=True)
class TopicEvent:
    """An ephemeral event on a public live topic (`post:<id>`, `poll:<id>`, `group:<id>`)."""

    topic: str
    type: str
    data: dict[str, Any]
    published_at: float = field(default=0.0)


UserListener = Callable[[UserEvent], Awaitable[None] | None]
TopicListener = Callable[[TopicEvent], Awaitable[None] | None]


class Bus(Protocol):
    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def publish_user(
        self, user_ids: Iterable[uuid.UUID], type: str, data: dict[str, Any]
    ) -> list[UserEvent]:
        """Append an event to each user's log (next seq) and deliver it on every node."""
        ...

    async def publish_topic(self, topic: str, type: str, data: dict[str, Any]) -> None:
        """Deliver an ephemeral event to every node's subscribers of `topic`."""
        ...

    async def events_after(self, user_id: uuid.UUID, seq: int) -> list[UserEvent] | None:
        """Events after `seq` in order, or None when the log no longer holds them all."""
        ...

    async def last_seq(self, user_id: uuid.UUID) -> int: ...

    async def online_users(self, user_ids: Iterable[uuid.UUID]) -> set[uuid.UUID]:
        """Which of these users have at least one live session on any node."""
        ...
