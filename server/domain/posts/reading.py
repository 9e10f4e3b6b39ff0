"""Reading posts: one post, a profile's grid, your drafts. Every read goes through the
visibility rule (server.store.visibility.post_visible) with the viewer; lists are keyset
pages drawn with a fixed number of queries (server/domain/posts/views.py)."""

from __future__ import annotations

import uuid
from typing import Any

from server.domain.access import access_post
from server.domain.accounts import find_visible_user
from server.domain.auth_tokens import Principal
from server.domain.context import Context
from server.domain.posts.views import render_posts
from server.pagination import decode_time_id_cursor, page
from server.store.posts import reads as store


async def get_post(ctx: Context, viewer: Principal, post_id: uuid.UUID) -> dict[str, Any]:
    post = await access_post(ctx, ctx.db, viewer, post_id)
    return (await render_posts(ctx, viewer.user_id, [post]))[0]


async def user_posts(
    ctx: Context, viewer: Principal, ref: str, *, limit: int, cursor: str | None
) -> dict[str, Any]:
    """A profile grid: the user's published posts and the ones they co-author, newest first,
    those the viewer may see (a private account's to its approved followers only). A user who
    blocked the viewer does not exist for them (404)."""
    user = await find_visible_user(ctx, viewer, ref)
    rows = await store.profile_grid(
        ctx.db, user["id"], viewer.user_id, decode_time_id_cursor(cursor), limit + 1
    )
    rows, next_cursor = page(rows, limit, lambda r: store.keyset_of(r, "published_at"))
    return {"items": await render_posts(ctx, viewer.user_id, rows), "next_cursor": next_cursor}


async def drafts(
    ctx: Context, viewer: Principal, *, limit: int, cursor: str | None
) -> dict[str, Any]:
    """Your posts not published yet: drafts, scheduled ones and those waiting for co-authors,
    last touched first. Nobody else ever sees them here."""
    rows = await store.unpublished_of(
        ctx.db, viewer.user_id, decode_time_id_cursor(cursor), limit + 1
    )
    rows, next_cursor = page(rows, limit, lambda r: store.keyset_of(r, "updated_at"))
    return {"items": await render_posts(ctx, viewer.user_id, rows), "next_cursor": next_cursor}
