"""Direct messaging's messages: sending (append), pages, edits, deletions, reactions, media and
search (conversations, participants and watermarks: server/store/conversations.py).

Lock order: the conversation row (every message write of a conversation takes it first, via the
`message_seq` bump or `lock_conversation`), then participant rows, then message rows.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from server.store.db import Queries, Row, jsonb
from server.store.visibility import blocked_either_way, blocks, user_brief_seen_by

# Every message column a view needs (never `search`).
MESSAGE_COLUMNS = """m.id, m.conversation_id, m.seq, m.sender_id, m.content, m.message_type,
    m.product_id, m.product_snapshot, m.replied_to_message_id, m.forwarded_from_message_id,
    m.is_forwarded, m.client_nonce, m.media_count, m.is_edited, m.edited_at, m.deleted_at,
    m.deleted_for, m.created_at"""

# The quoted message of a reply (alias r), flattened.
REPLY_COLUMNS = """r.id AS reply_id, r.sender_id AS reply_sender_id,
    r.message_type AS reply_type, left(r.content, 200) AS reply_content,
    r.deleted_at AS reply_deleted_at, (r.media_count > 0) AS reply_has_media"""

# Participant `p` has the conversation muted now.
_MUTED = "(p.is_muted AND (p.muted_until IS NULL OR p.muted_until > now()))"

# Reactions of message `m` grouped by emoji (first reacted first), and its attachments.
REACTIONS = """(SELECT coalesce(jsonb_agg(jsonb_build_object(
                 'emoji', g.emoji, 'count', g.n, 'user_ids', g.users) ORDER BY g.first), '[]')
             FROM (SELECT emoji, count(*) AS n, min(created_at) AS first,
                          jsonb_agg(user_id ORDER BY created_at) AS users
                   FROM message_reactions WHERE message_id = m.id GROUP BY emoji) g)"""
MEDIA = """CASE WHEN m.media_count > 0 THEN (
              SELECT jsonb_agg(jsonb_build_object(
                  'id', mm.id, 'media_id', mm.media_id, 'media_type', mm.media_type,
                  'media_url', mm.media_url,
                  'thumbnail_url', mm.thumbnail_url, 'file_name', mm.file_name,
                  'file_size', mm.file_size) ORDER BY mm.position, mm.id)
              FROM message_media mm WHERE mm.message_id = m.id) END"""
EXTRAS = f"{REACTIONS} AS reactions, {MEDIA} AS media"

USER_COLUMNS = """u.id, u.username, u.display_name, u.profile_picture_url, u.is_verified,
    u.is_active"""

# Hidden for user %(me)s: deleted for them, or older than their "delete conversation".
NOT_HIDDEN = """m.seq > {cleared}
    AND NOT EXISTS (SELECT 1 FROM message_deletions d
                    WHERE d.user_id = %(me)s AND d.message_id = m.id)"""


# Conversations ----------------------------------------------------------------------------


async def conversation_page(
    q: Queries,
    user_id: uuid.UUID,
    *,
    limit: int,
    after: tuple[datetime, uuid.UUID] | None,
    conversation_id: uuid.UUID | None = None,
) -> list[Row]:
    """The user's visible conversations, latest activity first (keyset on activity_at, id),
    each with the other participant, the last message the user can see and the banner's
    product message. With `conversation_id`: that one conversation (hidden or not)."""
    where = ["p.user_id = %(me)s"]
    if conversation_id is not None:
        where.append("p.conversation_id = %(c)s")
    else:
        where.append("NOT p.hidden")
        if after is not None:
            where.append("(p.activity_at, p.conversation_id) < (%(at)s, %(after_id)s)")
    return await q.fetch(
        f"""SELECT p.conversation_id AS id, c.conversation_type, c.message_seq,
                   c.created_at, c.updated_at, c.last_message_at,
                   p.activity_at, p.is_muted, p.muted_until,
                   (p.is_muted AND (p.muted_until IS NULL OR p.muted_until > now())) AS muted,
                   p.unread_count, p.marked_unread, p.last_read_seq, p.last_read_at,
                   p.last_delivered_seq, p.cleared_seq, p.cleared_at, p.hidden, p.joined_at,
                   o.user_id AS other_id, o.last_read_seq AS other_read_seq,
                   o.last_read_at AS other_read_at, o.last_delivered_seq AS other_delivered_seq,
                   o.delivered_at AS other_delivered_at,
                   {user_brief_seen_by("%(me)s")} AS other_user,
                   lm.*
            FROM conversation_participants p
            JOIN conversations c ON c.id = p.conversation_id
            JOIN conversation_participants o
              ON o.conversation_id = p.conversation_id AND o.user_id <> p.user_id
            JOIN users u ON u.id = o.user_id
            LEFT JOIN LATERAL (
                SELECT to_jsonb(x) AS last_message FROM (
                    SELECT {MESSAGE_COLUMNS}, {REPLY_COLUMNS}, {EXTRAS}
                    FROM messages m LEFT JOIN messages r ON r.id = m.replied_to_message_id
                    WHERE m.conversation_id = p.conversation_id
                      AND {NOT_HIDDEN.format(cleared="p.cleared_seq")}
                    ORDER BY m.seq DESC LIMIT 1) x
            ) lm ON true
            WHERE {" AND ".join(where)}
            ORDER BY p.activity_at DESC, p.conversation_id DESC
            LIMIT %(n)s""",
        {
            "me": user_id,
            "c": conversation_id,
            "at": after[0] if after else None,
            "after_id": after[1] if after else None,
            "n": limit,
        },
    )


# Read and delivery watermarks -----------------------------------------------------------------


# Messages -----------------------------------------------------------------------------------


async def find_by_nonce(q: Queries, sender_id: uuid.UUID, nonce: str) -> Row | None:
    return await q.fetchrow(
        f"""SELECT {MESSAGE_COLUMNS}, {REPLY_COLUMNS}, {EXTRAS}
            FROM messages m LEFT JOIN messages r ON r.id = m.replied_to_message_id
            WHERE m.sender_id = %s AND m.client_nonce = %s""",
        (sender_id, nonce),
    )


# The message append (see `append`); built once, so its prepared form is converted once.
_APPEND = f"""WITH ok AS (
          SELECT me.conversation_id, o.user_id AS other_id, o.last_read_seq,
                 (me.is_muted AND (me.muted_until IS NULL OR me.muted_until > now()))
                   AS muted,
                 me.unread_count, me.marked_unread
          FROM conversation_participants me
          JOIN conversation_participants o
            ON o.conversation_id = me.conversation_id AND o.user_id <> me.user_id
          JOIN users ou ON ou.id = o.user_id AND ou.is_active
          WHERE me.conversation_id = %(c)s::uuid AND me.user_id = %(sender)s::uuid
            AND NOT {blocked_either_way("me.user_id", "o.user_id")}
        ), conv AS (
          UPDATE conversations
          SET message_seq = message_seq + 1, last_message_at = clock_timestamp(),
              updated_at = clock_timestamp()
          WHERE id = (SELECT conversation_id FROM ok)
          RETURNING id, message_seq, last_message_at
        ), m AS (
          INSERT INTO messages (id, conversation_id, seq, sender_id, content, message_type,
              product_id, product_snapshot, replied_to_message_id,
              forwarded_from_message_id, is_forwarded, client_nonce, created_at)
          SELECT %(id)s::uuid, conv.id, conv.message_seq, %(sender)s::uuid,
                 %(content)s::text, %(type)s::text, %(product)s::uuid, %(snapshot)s::jsonb,
                 %(reply)s::uuid, %(fwd)s::uuid, %(fwd)s::uuid IS NOT NULL,
                 %(nonce)s::text, conv.last_message_at
          FROM conv
          ON CONFLICT (sender_id, client_nonce) WHERE client_nonce IS NOT NULL DO NOTHING
          RETURNING *
        ), parts AS (
          UPDATE conversation_participants p SET
            activity_at = m.created_at,
            hidden = false,
            unread_count = CASE WHEN p.user_id = m.sender_id THEN 0
                                ELSE p.unread_count + 1 END,
            last_read_seq = CASE WHEN p.user_id = m.sender_id THEN m.seq
                                 ELSE p.last_read_seq END,
            last_read_at = CASE WHEN p.user_id = m.sender_id THEN m.created_at
                                ELSE p.last_read_at END,
            last_delivered_seq = CASE WHEN p.user_id = m.sender_id THEN m.seq
                                      ELSE p.last_delivered_seq END,
            marked_unread = CASE WHEN p.user_id = m.sender_id THEN false
                                 ELSE p.marked_unread END,
            notify_count = CASE WHEN p.user_id = m.sender_id THEN 0
                                WHEN %(cn)s::boolean AND NOT {_MUTED} THEN p.notify_count + 1
                                ELSE p.notify_count END,
            notify_message_id = CASE WHEN p.user_id = m.sender_id THEN NULL
                                     WHEN %(cn)s::boolean AND NOT {_MUTED} THEN m.id
                                     ELSE p.notify_message_id END
          FROM m WHERE p.conversation_id = m.conversation_id
          RETURNING p.user_id, p.unread_count,
            (p.is_muted AND (p.muted_until IS NULL OR p.muted_until > now())) AS muted
        )
        SELECT {MESSAGE_COLUMNS}, {REPLY_COLUMNS}, '[]'::jsonb AS reactions,
               NULL::jsonb AS media,
               (SELECT jsonb_agg(to_jsonb(parts)) FROM parts) AS participants,
               ok.other_id AS ctx_other_id, ok.last_read_seq AS ctx_other_read_seq,
               ok.muted AS ctx_muted, ok.unread_count AS ctx_unread_count,
               ok.marked_unread AS ctx_marked_unread
        FROM m CROSS JOIN ok LEFT JOIN messages r ON r.id = m.replied_to_message_id"""


async def append(
    q: Queries,
    *,
    id: uuid.UUID,
    conversation_id: uuid.UUID,
    sender_id: uuid.UUID,
    content: str,
    message_type: str,
    product_id: uuid.UUID | None = None,
    product_snapshot: dict[str, Any] | None = None,
    replied_to: uuid.UUID | None = None,
    forwarded_from: uuid.UUID | None = None,
    nonce: str | None = None,
    coalesce_notify: bool = False,
) -> Row | None:
    """Append a message, if the sender may send it: they take part in the conversation, the
    other participant is active, and neither blocks the other. Bumps the conversation's seq under
    its row lock, inserts the message with that seq and the DB clock, and moves both
    participants (the sender has read up to it; the other gets one more unread; the
    conversation reappears in both lists). One round trip.

    With `coalesce_notify` the message is also counted on the recipient's row for the
    coalescing NEW_MESSAGE writer (unless they muted the conversation), in this same
    statement; the sender's own pending count goes (replying reads the conversation).

    Returns the message with `participants` (user_id, unread_count, muted) and the sender's
    context before it (`ctx_other_id`, `ctx_other_read_seq`, `ctx_muted`, `ctx_unread_count`,
    `ctx_marked_unread`); None when it may not be sent or the sender already used `nonce`
    (the caller finds out which).

    A server-side prepared statement, planned once per connection (server/store/prepared.py);
    the parameters PostgreSQL cannot infer are cast."""
    return await q.fetchrow_prepared(
        "messaging.append",
        _APPEND,
        {
            "c": conversation_id,
            "id": id,
            "sender": sender_id,
            "content": content,
            "type": message_type,
            "product": product_id,
            "snapshot": jsonb(product_snapshot) if product_snapshot is not None else None,
            "reply": replied_to,
            "fwd": forwarded_from,
            "nonce": nonce,
            "cn": coalesce_notify,
        },
    )


async def get_message(q: Queries, message_id: uuid.UUID) -> Row | None:
    """A message with its reply preview, reactions and media (no visibility check)."""
    return await q.fetchrow(
        f"""SELECT {MESSAGE_COLUMNS}, {REPLY_COLUMNS}, {EXTRAS}
            FROM messages m LEFT JOIN messages r ON r.id = m.replied_to_message_id
            WHERE m.id = %s""",
        (message_id,),
    )


async def visible_message(q: Queries, message_id: uuid.UUID, user_id: uuid.UUID) -> Row | None:
    """The message if `user_id` takes part in its conversation and may still see it (not
    deleted for them, not before their "delete conversation"); tombstones included."""
    return await q.fetchrow(
        f"""SELECT {MESSAGE_COLUMNS}, {REPLY_COLUMNS}, {EXTRAS}
            FROM messages m
            JOIN conversation_participants p
              ON p.conversation_id = m.conversation_id AND p.user_id = %(me)s
            LEFT JOIN messages r ON r.id = m.replied_to_message_id
            WHERE m.id = %(id)s AND {NOT_HIDDEN.format(cleared="p.cleared_seq")}""",
        {"id": message_id, "me": user_id},
    )


async def message_page(
    q: Queries,
    conversation_id: uuid.UUID,
    user_id: uuid.UUID,
    cleared_seq: int,
    *,
    limit: int,
    before_seq: int | None = None,
    after_seq: int | None = None,
) -> list[Row]:
    """Messages the user can see: newest first below `before_seq`, or oldest first above
    `after_seq` (catching up). `limit` rows (callers ask for one more to know if more exist).
    Index: messages (conversation_id, seq)."""
    where = ["m.conversation_id = %(c)s", NOT_HIDDEN.format(cleared="%(cleared)s")]
    if after_seq is not None:
        where.append("m.seq > %(after)s")
        order = "m.seq ASC"
    else:
        order = "m.seq DESC"
        if before_seq is not None:
            where.append("m.seq < %(before)s")
    return await q.fetch(
        f"""SELECT {MESSAGE_COLUMNS}, {REPLY_COLUMNS}, {EXTRAS}
            FROM messages m LEFT JOIN messages r ON r.id = m.replied_to_message_id
            WHERE {" AND ".join(where)}
            ORDER BY {order} LIMIT %(n)s""",
        {
            "c": conversation_id,
            "me": user_id,
            "cleared": cleared_seq,
            "before": before_seq,
            "after": after_seq,
            "n": limit,
        },
    )


async def conversation_of(q: Queries, message_id: uuid.UUID) -> uuid.UUID | None:
    return await q.fetchval("SELECT conversation_id FROM messages WHERE id = %s", (message_id,))


async def copy_media(
    q: Queries, source_id: uuid.UUID, target_id: uuid.UUID, new_ids: list[uuid.UUID]
) -> list[dict]:
    """Copy a message's attachments to another (a forward), with the given new ids (at least
    as many as the source has); returns them as the view lists them."""
    rows = await q.fetch(
        """WITH src AS (
             SELECT mm.*, row_number() OVER (ORDER BY position, id) AS n
             FROM message_media mm WHERE message_id = %(s)s
           ), ins AS (
             INSERT INTO message_media (id, message_id, media_id, media_type, media_url,
                 thumbnail_url, file_name, file_size, position)
             SELECT (%(ids)s::uuid[])[src.n], %(t)s, media_id, media_type, media_url,
                    thumbnail_url, file_name, file_size, position
             FROM src
             RETURNING id, media_id, media_type, media_url, thumbnail_url, file_name, file_size,
                 position
           ), upd AS (
             UPDATE messages SET media_count = (SELECT count(*) FROM ins) WHERE id = %(t)s
           )
           SELECT * FROM ins ORDER BY position, id""",
        {"s": source_id, "t": target_id, "ids": new_ids},
    )
    return [{k: v for k, v in r.items() if k != "position"} for r in rows]


async def lock_message(q: Queries, message_id: uuid.UUID) -> Row | None:
    return await q.fetchrow(
        f"SELECT {MESSAGE_COLUMNS} FROM messages m WHERE m.id = %s FOR UPDATE", (message_id,)
    )


async def edit(q: Queries, message_id: uuid.UUID, content: str, message_type: str) -> Row:
    return await q.fetchrow_one(
        f"""WITH m AS (
              UPDATE messages SET content = %(content)s, message_type = %(type)s,
                     is_edited = true, edited_at = clock_timestamp()
              WHERE id = %(id)s RETURNING *)
            SELECT {MESSAGE_COLUMNS}, {REPLY_COLUMNS}, {EXTRAS}
            FROM m LEFT JOIN messages r ON r.id = m.replied_to_message_id""",
        {"id": message_id, "content": content, "type": message_type},
    )


async def tombstone(q: Queries, message_id: uuid.UUID) -> Row:
    """Delete a message for everyone: its content, product, reactions and attachments go; the
    row stays as a tombstone both participants see. Recipients who had not read it get one
    unread less."""
    await q.execute("DELETE FROM message_reactions WHERE message_id = %s", (message_id,))
    await q.execute("DELETE FROM message_media WHERE message_id = %s", (message_id,))
    return await q.fetchrow_one(
        f"""WITH m AS (
              UPDATE messages SET content = '', product_id = NULL, product_snapshot = NULL,
                     media_count = 0, deleted_at = clock_timestamp(), deleted_for = 'everyone'
              WHERE id = %(id)s RETURNING *
            ), unread AS (
              UPDATE conversation_participants p
              SET unread_count = greatest(p.unread_count - 1, 0)
              FROM m
              WHERE p.conversation_id = m.conversation_id AND p.user_id <> m.sender_id
                AND m.seq > p.last_read_seq AND m.seq > p.cleared_seq
                AND NOT EXISTS (SELECT 1 FROM message_deletions d
                                WHERE d.user_id = p.user_id AND d.message_id = m.id)
              RETURNING p.user_id, p.unread_count
            )
            SELECT {MESSAGE_COLUMNS}, {REPLY_COLUMNS}, '[]'::jsonb AS reactions,
                   NULL::jsonb AS media,
                   (SELECT jsonb_agg(to_jsonb(unread)) FROM unread) AS unread
            FROM m LEFT JOIN messages r ON r.id = m.replied_to_message_id""",
        {"id": message_id},
    )


async def hide_for(q: Queries, message_id: uuid.UUID, user_id: uuid.UUID) -> Row | None:
    """Delete a message for one user. Returns their unread count when it changed it (an unread
    message of the other participant), {} when hidden, None when it was hidden already."""
    return await q.fetchrow(
        """WITH d AS (
             INSERT INTO message_deletions (user_id, message_id) VALUES (%(me)s, %(id)s)
             ON CONFLICT DO NOTHING RETURNING message_id
           ), unread AS (
             UPDATE conversation_participants p
             SET unread_count = greatest(p.unread_count - 1, 0)
             FROM d JOIN messages m ON m.id = d.message_id
             WHERE p.conversation_id = m.conversation_id AND p.user_id = %(me)s
               AND m.sender_id <> %(me)s AND m.deleted_at IS NULL
               AND m.seq > p.last_read_seq AND m.seq > p.cleared_seq
             RETURNING p.unread_count
           )
           SELECT d.message_id, (SELECT unread_count FROM unread) AS unread_count FROM d""",
        {"me": user_id, "id": message_id},
    )


async def product_context_message(
    q: Queries,
    conversation_id: uuid.UUID,
    user_id: uuid.UUID,
    cleared_seq: int,
    at_or_before_seq: int | None = None,
) -> Row | None:
    """The latest product-context message of the conversation the user can see (at or before
    `at_or_before_seq`): the conversation's product banner."""
    where = [
        "m.conversation_id = %(c)s",
        "m.product_snapshot IS NOT NULL",
        NOT_HIDDEN.format(cleared="%(cleared)s"),
    ]
    if at_or_before_seq is not None:
        where.append("m.seq <= %(at)s")
    return await q.fetchrow(
        f"""SELECT m.id, m.seq, m.sender_id, m.product_id, m.product_snapshot, m.created_at
            FROM messages m WHERE {" AND ".join(where)}
            ORDER BY m.seq DESC LIMIT 1""",
        {"c": conversation_id, "me": user_id, "cleared": cleared_seq, "at": at_or_before_seq},
    )


# Reactions ----------------------------------------------------------------------------------


async def add_reaction(
    q: Queries, *, id: uuid.UUID, message_id: uuid.UUID, user_id: uuid.UUID, emoji: str
) -> bool:
    """True if added, False if the user had already reacted with this emoji."""
    return bool(
        await q.execute(
            """INSERT INTO message_reactions (id, message_id, user_id, emoji)
               VALUES (%s, %s, %s, %s) ON CONFLICT (message_id, user_id, emoji) DO NOTHING""",
            (id, message_id, user_id, emoji),
        )
    )


async def count_user_reactions(q: Queries, message_id: uuid.UUID, user_id: uuid.UUID) -> int:
    return await q.fetchval(
        "SELECT count(*) FROM message_reactions WHERE message_id = %s AND user_id = %s",
        (message_id, user_id),
    )


async def remove_reaction(
    q: Queries, message_id: uuid.UUID, user_id: uuid.UUID, emoji: str
) -> bool:
    return bool(
        await q.execute(
            """DELETE FROM message_reactions
               WHERE message_id = %s AND user_id = %s AND emoji = %s""",
            (message_id, user_id, emoji),
        )
    )


async def reactions_of(q: Queries, message_id: uuid.UUID) -> list[dict[str, Any]]:
    return await q.fetchval(f"SELECT {REACTIONS} FROM (SELECT %s::uuid AS id) m", (message_id,))


# Search -------------------------------------------------------------------------------------


async def search(
    q: Queries,
    user_id: uuid.UUID,
    tsquery: str,
    *,
    limit: int,
    after: tuple[datetime, uuid.UUID] | None,
    conversation_id: uuid.UUID | None = None,
) -> list[Row]:
    """Full-text search over the messages the user can see in their conversations (never what
    they deleted, nor anything before their "delete conversation"), newest first."""
    where = [
        "p.user_id = %(me)s",
        "m.search @@ to_tsquery('simple', %(q)s)",
        "m.deleted_at IS NULL",
        NOT_HIDDEN.format(cleared="p.cleared_seq"),
    ]
    if conversation_id is not None:
        where.append("p.conversation_id = %(c)s")
    if after is not None:
        where.append("(m.created_at, m.id) < (%(at)s, %(after_id)s)")
    return await q.fetch(
        f"""SELECT {MESSAGE_COLUMNS}, {REPLY_COLUMNS}, {EXTRAS},
                   {user_brief_seen_by("%(me)s")} AS other_user
            FROM conversation_participants p
            JOIN messages m ON m.conversation_id = p.conversation_id
            JOIN conversation_participants o
              ON o.conversation_id = p.conversation_id AND o.user_id <> p.user_id
            JOIN users u ON u.id = o.user_id
            LEFT JOIN messages r ON r.id = m.replied_to_message_id
            WHERE {" AND ".join(where)}
            ORDER BY m.created_at DESC, m.id DESC
            LIMIT %(n)s""",
        {
            "me": user_id,
            "q": tsquery,
            "c": conversation_id,
            "at": after[0] if after else None,
            "after_id": after[1] if after else None,
            "n": limit,
        },
    )


# Users --------------------------------------------------------------------------------------


async def user_brief(q: Queries, user_id: uuid.UUID) -> Row | None:
    return await q.fetchrow(f"SELECT {USER_COLUMNS} FROM users u WHERE u.id = %s", (user_id,))


async def active_user_by_ref(
    q: Queries, user_id: uuid.UUID | None, username: str | None
) -> Row | None:
    if user_id is not None:
        return await q.fetchrow(
            f"SELECT {USER_COLUMNS} FROM users u WHERE u.id = %s AND u.is_active", (user_id,)
        )
    return await q.fetchrow(
        f"SELECT {USER_COLUMNS} FROM users u WHERE lower(u.username) = lower(%s) AND u.is_active",
        (username,),
    )


async def blocks_between(q: Queries, me: uuid.UUID, other: uuid.UUID) -> Row:
    return await q.fetchrow_one(
        f"""SELECT {blocks("%(me)s", "%(o)s")} AS blocking,
                   {blocks("%(o)s", "%(me)s")} AS blocked_by""",
        {"me": me, "o": other},
    )
