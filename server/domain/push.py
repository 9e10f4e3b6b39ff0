"""Push notifications for recipients with no live session.

notify() enqueues a `push.send` job (coalesced per notification); the job reads the current
state of the notification, so a burst of likes that batched into one notification while the
job was queued becomes one push with the batched text. The message goes through a PushSender:
the logging sender by default, or the HTTP webhook sender (server/push_relay.py) when
settings.push.webhook_url is set, for a push relay that owns device tokens (APNs / FCM / web
push).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from server.domain.notification_catalog import action, channels_for, effective_settings
from server.store import notifications as store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PushMessage:
    user_id: str
    notification_id: str
    type: str
    title: str
    body: str
    # Badge: the recipient's unread count when the push was sent.
    badge: int
    # A newer push with the same key replaces the older one on the device.
    collapse_key: str
    data: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class PushSender(Protocol):
    async def send(self, message: PushMessage) -> None:
        """Deliver or raise (a retryable error, or PermanentJobError when retrying is futile)."""
        ...

    async def close(self) -> None: ...


class LoggingPushSender:
    """The embedded default: the push is written to the log."""

    def __init__(self) -> None:
        self.sent: list[PushMessage] = []

    async def send(self, message: PushMessage) -> None:
        self.sent.append(message)
        del self.sent[:-100]
        log.info(
            "push not sent (no relay configured)",
            extra={"user_id": message.user_id, "push_type": message.type, "body": message.body},
        )

    async def close(self) -> None:
        pass


async def build_message(ctx: Any, notification_id: uuid.UUID) -> PushMessage | None:
    """The push for a notification as it is now, or None if it should not be sent anymore
    (deleted, read on another device, or push turned off since)."""
    row = await store.get(ctx.db, notification_id)
    if row is None or row["is_read"]:
        return None
    settings = effective_settings(await store.get_settings(ctx.db, row["recipient_id"]))
    if not channels_for(settings, row["type"], actor_is_followed=True).push:
        return None
    badge = await store.unread_count(ctx.db, row["recipient_id"])
    target = action(
        row["type"], row["entity_type"], row["entity_id"], row["actor_ids"], row["actor_count"]
    )
    return PushMessage(
        user_id=str(row["recipient_id"]),
        notification_id=str(row["id"]),
        type=row["type"],
        title="Nexgate",
        body=row["content"],
        badge=badge,
        collapse_key=f"notification:{row['id']}",
        data={
            "entity_type": row["entity_type"],
            "entity_id": str(row["entity_id"]),
            "action": target,
            "actor_count": row["actor_count"],
            "event_count": row["event_count"],
        },
    )


async def send_push_job(ctx: Any, payload: dict[str, Any]) -> None:
    """Job `push.send`: {notification_id, user_id}."""
    message = await build_message(ctx, uuid.UUID(payload["notification_id"]))
    if message is None:
        return
    await ctx.push.send(message)
