"""Presence: who is online, shown only between users who may see each other (no block either
way). Online means at least one live gateway session (socket or SSE stream) on any node."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from server.domain.auth_tokens import Principal
from server.domain.context import Context
from server.store import graph as graph_store

ONLINE, OFFLINE = "online", "offline"


async def hidden_from_viewer(
    ctx: Context, viewer: uuid.UUID, user_ids: Iterable[uuid.UUID]
) -> set[uuid.UUID]:
    """Which of `user_ids` the viewer may not see (blocked either way)."""
    others = [u for u in dict.fromkeys(user_ids) if u != viewer]
    if not others:
        return set()
    return await graph_store.blocked_either_way_among(ctx.db, viewer, others)


async def hidden_from(
    ctx: Context, user_id: uuid.UUID, viewer_ids: Iterable[uuid.UUID]
) -> set[uuid.UUID]:
    """Which viewers may not see `user_id` (blocks are symmetric for presence)."""
    return await hidden_from_viewer(ctx, user_id, viewer_ids)


async def query(
    ctx: Context, viewer: Principal, user_ids: list[uuid.UUID]
) -> tuple[dict[str, str], list[uuid.UUID]]:
    """The presence of each asked user as the viewer may see it, and the users the viewer may
    watch. A user hidden by a block, or one that does not exist, reads as offline."""
    wanted = list(dict.fromkeys(user_ids))
    hidden = await hidden_from_viewer(ctx, viewer.user_id, wanted)
    visible = [u for u in wanted if u not in hidden]
    online = await ctx.bus.online_users(visible)
    statuses = {str(u): (ONLINE if u in online else OFFLINE) for u in wanted}
    return statuses, visible
