"""Reading a conversation: its messages newest first, the ones after a seq oldest first (catching
up after being away), and one message. Fetching messages counts as their delivery."""

from __future__ import annotations

import uuid
from typing import Any

from server.domain.access import access_conversation, access_message
from server.domain.auth_tokens import Principal
from server.domain.context import Context
from server.domain.messaging.commands import MessageListQuery
from server.domain.messaging.receipts import advance_delivered
from server.domain.messaging.views import decode_seq_cursor, message_view_in
from server.pagination import encode_cursor
from server.store import messaging as store


async def list_messages(
    ctx: Context, actor: Principal, conversation_id: uuid.UUID, query: MessageListQuery
) -> dict[str, Any]:
    """Messages the user can see, newest first (keyset on seq); with `after_seq`, the ones after
    it oldest first (catching up after being away). Fetching them counts as delivery."""
    c = await access_conversation(ctx, ctx.db, actor, conversation_id)
    limit, after_seq = query.limit, query.after_seq
    before = decode_seq_cursor(query.cursor) if after_seq is None else None
    rows = await store.message_page(
        ctx.db,
        conversation_id,
        actor.user_id,
        c["cleared_seq"],
        limit=limit + 1,
        before_seq=before,
        after_seq=after_seq,
    )
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = None
    if more:
        next_cursor = encode_cursor(rows[-1]["seq"]) if after_seq is None else None
    items = [message_view_in(row, actor.user_id, c) for row in rows]
    newest = max((row["seq"] for row in rows), default=0)
    await advance_delivered(ctx, actor.user_id, c, newest)
    result: dict[str, Any] = {"items": items, "next_cursor": next_cursor}
    if after_seq is not None:
        result["has_more"] = more
    return result


async def get_message(ctx: Context, actor: Principal, message_id: uuid.UUID) -> dict[str, Any]:
    """A message as the user sees it, with its delivery status when it is their own."""
    row = await access_message(ctx, ctx.db, actor, message_id)
    c = await access_conversation(ctx, ctx.db, actor, row["conversation_id"])
    return message_view_in(row, actor.user_id, c)
