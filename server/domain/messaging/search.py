"""Message search: PostgreSQL full text (GIN; every word as a prefix), newest first, over the
viewer's own conversations only; never a message deleted for them or for everyone, nor anything
before their "delete conversation" (the store's search query applies the same visibility as
every other message read)."""

from __future__ import annotations

import re
from typing import Any

from server.domain.access import access_conversation
from server.domain.auth_tokens import Principal
from server.domain.context import Context
from server.domain.messaging.commands import SearchQuery
from server.domain.messaging.views import decode_time_id_cursor, message_view
from server.errors import ValidationFailed
from server.pagination import encode_cursor
from server.store import messaging as store

_WORD_RE = re.compile(r"\w+", re.UNICODE)
MAX_WORDS = 8


def to_tsquery(text: str | None) -> str | None:
    """`"red bike"` -> `red:* & bike:*` (every word, as a prefix); only word characters
    survive, so the result is always a valid tsquery."""
    words = _WORD_RE.findall((text or "").lower())[:MAX_WORDS]
    if not words:
        return None
    return " & ".join(f"{word}:*" for word in words)


async def search_messages(ctx: Context, actor: Principal, query: SearchQuery) -> dict[str, Any]:
    """Full-text search (every word as a prefix) over the messages the user can see in their
    own conversations, newest first; never a message they deleted, nor anything before their
    "delete conversation"."""
    tsquery = to_tsquery(query.q)
    if tsquery is None:
        raise ValidationFailed.field("q", "needs at least one word to search for")
    if query.conversation_id is not None:
        await access_conversation(ctx, ctx.db, actor, query.conversation_id)
    limit = query.limit
    rows = await store.search(
        ctx.db,
        actor.user_id,
        tsquery,
        limit=limit + 1,
        after=decode_time_id_cursor(query.cursor),
        conversation_id=query.conversation_id,
    )
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1]
        next_cursor = encode_cursor(last["created_at"].isoformat(), str(last["id"]))
    return {
        "items": [
            {
                "conversation_id": row["conversation_id"],
                "other_user": row["other_user"],
                "message": message_view(row, actor.user_id),
            }
            for row in rows
        ],
        "next_cursor": next_cursor,
    }
