"""Typing indicators: ephemeral, never stored.

`typing.start` gives the other participant a `typing` event that lapses by itself after
`expires_in_ms` unless renewed (clients renew every ~3 s; renewals within TYPING_RENEW_S are
dropped), and `typing.stop` ends it at once. Nothing is written to the database, so there is
no transaction to stage the event in: it goes out through the sink's ephemeral path (still in
the recipient's ordered log; after a resume clients ignore one that has expired). Across a block,
or to a deactivated account, nothing is sent and the caller is not told.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from server.config import RateLimit
from server.domain.access import access_conversation, can_message
from server.domain.auth_tokens import Principal
from server.domain.context import Context

# Gateway event (per-user, sequenced).
TYPING = "typing"

TYPING_TTL_S = 6.0  # a `typing` event lapses after this long unless renewed
TYPING_RENEW_S = 2  # renewals more frequent than this are dropped (clients renew every ~3 s)


async def set_typing(
    ctx: Context, actor: Principal, conversation_id: uuid.UUID, *, active: bool = True
) -> dict[str, Any]:
    """Tell the other participant you are typing (`active`) or stopped."""
    c = await access_conversation(ctx, ctx.db, actor, conversation_id)
    ttl_ms = int(TYPING_TTL_S * 1000) if active else 0
    result = {"conversation_id": conversation_id, "expires_in_ms": ttl_ms}
    if not can_message(c):
        return result
    if active:
        throttle = RateLimit(count=1, window_s=TYPING_RENEW_S)
        if await ctx.limiter.hit(f"typing:{actor.user_id}:{conversation_id}", throttle):
            return result
    await ctx.events.ephemeral_to_users(
        [c["other_id"]],
        TYPING,
        {
            "conversation_id": str(conversation_id),
            "user_id": str(actor.user_id),
            "active": active,
            "expires_in_ms": ttl_ms,
            "expires_at": int(time.time() * 1000) + ttl_ms,
        },
    )
    return result
