"""The coalescing NEW_MESSAGE writer's queries (issue 15): what a send counted on the
recipient's participant row (`notify_count`, `notify_message_id`; set by
messaging.append in the send's own statement), claimed and reset in one round trip."""

from __future__ import annotations

import uuid

from server.store.db import Queries, Row


async def claim(
    q: Queries,
    *,
    recipient: uuid.UUID | None = None,
    conversation: uuid.UUID | None = None,
    limit: int = 100,
    skip_locked: bool = True,
) -> list[Row]:
    """Take pending counts (all, one recipient's, or one conversation's) and reset them, with
    the latest counted message and whether the recipient has the conversation muted now.
    Row-locked until the caller's transaction ends, so a count is claimed exactly once across
    writers; `skip_locked` lets the background writer pass rows another writer holds, while a
    reader settling its own notifications waits for them (and then finds them done)."""
    return await q.fetch(
        f"""WITH c AS (
              SELECT id, conversation_id, user_id, notify_count, notify_message_id
              FROM conversation_participants
              WHERE notify_count > 0
                AND (%(r)s::uuid IS NULL OR user_id = %(r)s)
                AND (%(c)s::uuid IS NULL OR conversation_id = %(c)s)
              LIMIT %(n)s
              FOR UPDATE {"SKIP LOCKED" if skip_locked else ""}
            ), upd AS (
              UPDATE conversation_participants p SET notify_count = 0, notify_message_id = NULL
              FROM c WHERE p.id = c.id
              RETURNING p.id, (p.is_muted AND (p.muted_until IS NULL OR p.muted_until > now()))
                        AS muted
            )
            SELECT c.conversation_id, c.user_id AS recipient_id, c.notify_count,
                   upd.muted, m.id AS message_id, m.sender_id, m.content, m.message_type,
                   m.deleted_at
            FROM c JOIN upd ON upd.id = c.id
            LEFT JOIN messages m ON m.id = c.notify_message_id
            ORDER BY c.user_id, c.conversation_id""",
        {"r": recipient, "c": conversation, "n": limit},
    )


async def has_pending(q: Queries, recipient: uuid.UUID) -> bool:
    """Whether the user has counts the writer has not turned into notifications yet."""
    row = await q.fetchrow(
        """SELECT EXISTS (SELECT 1 FROM conversation_participants
                          WHERE user_id = %s AND notify_count > 0) AS pending""",
        (recipient,),
    )
    return bool(row and row["pending"])


async def clear(q: Queries, conversation_id: uuid.UUID, user_id: uuid.UUID) -> None:
    """The user read the conversation: what was pending for them there is moot."""
    await q.execute(
        """UPDATE conversation_participants SET notify_count = 0, notify_message_id = NULL
           WHERE conversation_id = %s AND user_id = %s AND notify_count > 0""",
        (conversation_id, user_id),
    )
