"""The Bus interface every engine implements (Centrifugo-style broker + presence + sessions).

Domain code only needs `publish_user` / `publish_topic` (usually through
`ctx.emit_after_commit` / `ctx.emit_topic_after_commit`) and `online_users`. The gateway uses the
rest: listeners for fan-out to local sockets, the resume log, presence and session records.
"""

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
    # `data` already encoded as JSON, when the engine has it (saves re-encoding on fan-out).
    data_json: bytes | None = field(default=None, repr=False)


@dataclass(slots=True)
class TopicEvent:
    """An ephemeral event on a public live topic (`post:<id>`, `poll:<id>`, `group:<id>`)."""

    topic: str
    type: str
    data: dict[str, Any]
    published_at: float = field(default=0.0)
    data_json: bytes | None = field(default=None, repr=False)


UserListener = Callable[[UserEvent], Awaitable[None] | None]
TopicListener = Callable[[TopicEvent], Awaitable[None] | None]
# Called when a node may have missed deliveries (e.g. its Redis subscription reconnected).
ResyncListener = Callable[[], Awaitable[None] | None]


class Bus(Protocol):
    node_id: str
    user_listeners: list[UserListener]
    topic_listeners: list[TopicListener]
    resync_listeners: list[ResyncListener]

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

    async def last_seqs(self, user_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, int]:
        """`last_seq` of many users in one round trip."""
        ...

    async def online_users(self, user_ids: Iterable[uuid.UUID]) -> set[uuid.UUID]:
        """Which of these users have at least one live session on any node."""
        ...

    # Presence bookkeeping (the gateway calls these; multi-device and multi-node aware).
    async def presence_join(self, user_id: uuid.UUID) -> bool:
        """This node gained its first live session of `user_id`. True if the user was offline
        everywhere before (so an `online` presence event is due)."""
        ...

    async def presence_leave(self, user_id: uuid.UUID) -> bool:
        """This node lost its last live session of `user_id`. True if the user is now offline
        everywhere (so an `offline` presence event is due)."""
        ...

    async def presence_refresh(self, user_ids: Iterable[uuid.UUID]) -> None:
        """Keep this node's presence of these users alive (called periodically)."""
        ...

    # Session records, so a session can be resumed on any node.
    async def save_session(self, session_id: str, record: dict[str, Any], ttl_s: float) -> None: ...

    async def load_session(self, session_id: str) -> dict[str, Any] | None: ...


def parse_user_id(value: Any) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
