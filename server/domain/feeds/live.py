"""Who may listen to an author's live feed topic `feed:<author_id>` (the gateway's topic
authorizer asks here): the author, or an accepted follower with no block either way."""

from __future__ import annotations

import uuid

from server.domain.auth_tokens import Principal
from server.domain.context import Context
from server.store import feeds as store


async def may_follow_live(ctx: Context, viewer: Principal, author_id: uuid.UUID) -> bool:
    if viewer.user_id == author_id:
        return True
    return await store.follows_author(ctx.db, viewer.user_id, author_id)
