"""Direct messaging's conversations: the pair's conversation, its participants, their mute,
hidden and cleared state, and the read / delivered watermarks (messages: server/store/messaging.py).

Lock order: the conversation row (every message write of a conversation takes it first, via the
`message_seq` bump or `lock_conversation`), then participant rows, then message rows.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from server.store.db import Queries, Row
from server.store.messaging import USER_COLUMNS
from server.store.visibility import blocked_either_way, blocks


async def insert_direct(
    q: Queries, *, id: uuid.UUID, low: uuid.UUID, high: uuid.UUID, creator: uuid.UUID
) -> uuid.UUID | None:
    """Create the pair's conversation; None if it exists already (the unique pair key makes a
    concurrent second create wait for the first, then do nothing)."""
    return await q.fetchval(
        """INSERT INTO conversations (id, conversation_type, user_low, user_high, created_by)
           VALUES (%(id)s, 'direct', %(low)s, %(high)s, %(creator)s)
           ON CONFLICT (user_low, user_high) WHERE conversation_type = 'direct' DO NOTHING
           RETURNING id""",
        {"id": id, "low": low, "high": high, "creator": creator},
    )


async def find_direct(q: Queries, low: uuid.UUID, high: uuid.UUID) -> uuid.UUID | None:
    return await q.fetchval(
        """SELECT id FROM conversations
           WHERE conversation_type = 'direct' AND user_low = %s AND user_high = %s""",
        (low, high),
    )


async def add_participant(
    q: Queries, *, id: uuid.UUID, conversation_id: uuid.UUID, user_id: uuid.UUID, hidden: bool
) -> None:
    await q.execute(
        """INSERT INTO conversation_participants (id, conversation_id, user_id, hidden)
           VALUES (%s, %s, %s, %s) ON CONFLICT (conversation_id, user_id) DO NOTHING""",
        (id, conversation_id, user_id, hidden),
    )


async def unhide(q: Queries, conversation_id: uuid.UUID, user_id: uuid.UUID) -> bool:
    """Show a conversation the user had deleted again (its old history stays gone)."""
    return bool(
        await q.execute(
            """UPDATE conversation_participants SET hidden = false, activity_at = now()
               WHERE conversation_id = %s AND user_id = %s AND hidden""",
            (conversation_id, user_id),
        )
    )


# Everything an action on a conversation decides on, in one round trip: the user's own
# participant row (me_*), the other participant and the blocks between them.
_CONTEXT = f"""
    SELECT c.id, c.conversation_type, c.message_seq, c.created_at, c.updated_at,
           c.last_message_at,
           me.id AS participant_id, me.user_id AS me_id, me.is_muted, me.muted_until,
           (me.is_muted AND (me.muted_until IS NULL OR me.muted_until > now())) AS muted,
           me.last_read_seq, me.last_read_at, me.last_delivered_seq, me.unread_count,
           me.marked_unread, me.cleared_seq, me.cleared_at, me.hidden, me.joined_at,
           o.user_id AS other_id, o.last_read_seq AS other_read_seq,
           o.last_read_at AS other_read_at, o.last_delivered_seq AS other_delivered_seq,
           o.delivered_at AS other_delivered_at,
           (o.is_muted AND (o.muted_until IS NULL OR o.muted_until > now())) AS other_muted,
           ou.is_active AS other_active,
           {blocks("me.user_id", "o.user_id")} AS blocking,
           {blocks("o.user_id", "me.user_id")} AS blocked_by
    FROM conversation_participants me
    JOIN conversations c ON c.id = me.conversation_id
    JOIN conversation_participants o
      ON o.conversation_id = me.conversation_id AND o.user_id <> me.user_id
    JOIN users ou ON ou.id = o.user_id
    WHERE me.conversation_id = %(c)s AND me.user_id = %(me)s"""


async def context(q: Queries, conversation_id: uuid.UUID, user_id: uuid.UUID) -> Row | None:
    """The conversation as `user_id` takes part in it, or None if they are not a participant."""
    return await q.fetchrow(_CONTEXT, {"c": conversation_id, "me": user_id})


async def lock_conversation(q: Queries, conversation_id: uuid.UUID) -> int | None:
    """Take the conversation's row lock (serialises message writes); returns its message_seq."""
    return await q.fetchval(
        "SELECT message_seq FROM conversations WHERE id = %s FOR UPDATE", (conversation_id,)
    )


async def participants(q: Queries, conversation_id: uuid.UUID) -> list[Row]:
    return await q.fetch(
        f"""SELECT {USER_COLUMNS}, p.joined_at, p.last_read_seq, p.last_read_at,
                   p.last_delivered_seq, p.delivered_at
            FROM conversation_participants p JOIN users u ON u.id = p.user_id
            WHERE p.conversation_id = %s ORDER BY p.joined_at, u.id""",
        (conversation_id,),
    )


async def set_mute(
    q: Queries,
    conversation_id: uuid.UUID,
    user_id: uuid.UUID,
    muted: bool,
    until: datetime | None,
) -> Row | None:
    return await q.fetchrow(
        """UPDATE conversation_participants SET is_muted = %s, muted_until = %s
           WHERE conversation_id = %s AND user_id = %s
           RETURNING is_muted, muted_until""",
        (muted, until if muted else None, conversation_id, user_id),
    )


async def clear_history(q: Queries, conversation_id: uuid.UUID, user_id: uuid.UUID) -> Row | None:
    """Delete the conversation for this user: everything up to now is gone for them, and the
    conversation leaves their list until a new message arrives. Call with the conversation
    locked so no message slips between the read of message_seq and the update."""
    return await q.fetchrow(
        """UPDATE conversation_participants p
           SET cleared_seq = c.message_seq, cleared_at = now(), hidden = true,
               unread_count = 0, marked_unread = false,
               last_read_seq = greatest(p.last_read_seq, c.message_seq),
               last_delivered_seq = greatest(p.last_delivered_seq, c.message_seq)
           FROM conversations c
           WHERE c.id = p.conversation_id AND p.conversation_id = %s AND p.user_id = %s
           RETURNING p.cleared_seq, p.cleared_at""",
        (conversation_id, user_id),
    )


async def set_marked_unread(
    q: Queries, conversation_id: uuid.UUID, user_id: uuid.UUID, value: bool
) -> bool:
    """True if the flag changed."""
    return bool(
        await q.execute(
            """UPDATE conversation_participants SET marked_unread = %s
               WHERE conversation_id = %s AND user_id = %s AND marked_unread <> %s""",
            (value, conversation_id, user_id, value),
        )
    )


async def mark_read(
    q: Queries, conversation_id: uuid.UUID, user_id: uuid.UUID, up_to: int
) -> Row | None:
    """Move the user's read watermark forward to `up_to` (never back); the unread count is
    recounted from what is left after it. Returns the new state with `changed`."""
    return await q.fetchrow(
        """WITH old AS (
             SELECT id, last_read_seq, cleared_seq FROM conversation_participants
             WHERE conversation_id = %(c)s AND user_id = %(me)s FOR UPDATE
           ), upd AS (
             UPDATE conversation_participants p
             SET last_read_seq = greatest(old.last_read_seq, %(up)s),
                 last_read_at = CASE WHEN %(up)s > old.last_read_seq THEN now()
                                     ELSE p.last_read_at END,
                 last_delivered_seq = greatest(p.last_delivered_seq, %(up)s),
                 delivered_at = CASE WHEN %(up)s > p.last_delivered_seq THEN now()
                                     ELSE p.delivered_at END,
                 marked_unread = false,
                 unread_count = (
                   SELECT count(*) FROM messages m
                   WHERE m.conversation_id = %(c)s AND m.sender_id <> %(me)s
                     AND m.seq > greatest(old.last_read_seq, %(up)s, old.cleared_seq)
                     AND m.deleted_at IS NULL
                     AND NOT EXISTS (SELECT 1 FROM message_deletions d
                                     WHERE d.user_id = %(me)s AND d.message_id = m.id))
             FROM old WHERE p.id = old.id
             RETURNING p.last_read_seq, p.last_read_at, p.unread_count, p.last_delivered_seq,
                       p.delivered_at, (p.last_read_seq > old.last_read_seq) AS changed,
                       p.notify_count
           )
           SELECT * FROM upd""",
        {"c": conversation_id, "me": user_id, "up": up_to},
    )


# Prepared statements (server/store/prepared.py): the two delivery acks, the hot path after
# every message an online recipient gets.
_MARK_DELIVERED = """UPDATE conversation_participants p
   SET last_delivered_seq = least(%(up)s::bigint, c.message_seq), delivered_at = now()
   FROM conversations c
   WHERE c.id = p.conversation_id AND p.conversation_id = %(c)s::uuid
     AND p.user_id = %(me)s::uuid AND p.last_delivered_seq < least(%(up)s::bigint, c.message_seq)
   RETURNING p.last_delivered_seq, p.delivered_at"""


async def mark_delivered(
    q: Queries, conversation_id: uuid.UUID, user_id: uuid.UUID, up_to: int
) -> Row | None:
    """Move the delivery watermark forward (capped at the conversation's last message).
    Returns the new state when it moved, else None."""
    return await q.fetchrow_prepared(
        "conversations.mark_delivered",
        _MARK_DELIVERED,
        {"c": conversation_id, "me": user_id, "up": up_to},
    )


_ADVANCE_DELIVERED = f"""UPDATE conversation_participants p
   SET last_delivered_seq = least(%(up)s::bigint, c.message_seq), delivered_at = now()
   FROM conversations c, conversation_participants o
   WHERE c.id = p.conversation_id AND p.conversation_id = %(c)s::uuid
     AND p.user_id = %(me)s::uuid
     AND o.conversation_id = p.conversation_id AND o.user_id <> p.user_id
     AND p.last_delivered_seq < least(%(up)s::bigint, c.message_seq)
   RETURNING p.last_delivered_seq, p.delivered_at, o.user_id AS other_id,
             {blocked_either_way("p.user_id", "o.user_id")} AS blocked"""


async def advance_delivered(
    q: Queries, conversation_id: uuid.UUID, user_id: uuid.UUID, up_to: int | None
) -> Row | None:
    """The delivery ack in one statement (issue 15): move the participant's watermark up to
    `up_to` (None: the latest message), capped at the conversation's last message, and return
    what its event needs (the other participant, whether a block stands either way). None
    when nothing moved or the user takes part in no such conversation (the caller asks which)."""
    return await q.fetchrow_prepared(
        "conversations.advance_delivered",
        _ADVANCE_DELIVERED,
        {"c": conversation_id, "me": user_id, "up": up_to},
    )


async def message_seq_of(q: Queries, conversation_id: uuid.UUID, message_id: uuid.UUID) -> int:
    return await q.fetchval(
        "SELECT seq FROM messages WHERE id = %s AND conversation_id = %s",
        (message_id, conversation_id),
    )
