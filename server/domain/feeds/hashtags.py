"""Hashtags: one tag (with your follow), its feed, following and unfollowing it.

A tag in a path is accepted with or without `#`, in any case or Unicode composition, and
normalised as posts store it (server/domain/posts/entities.normalize_tag). Overlong or
malformed tags are refused (422) before any SQL; a well-formed tag no post uses is a 404.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from server.domain.auth_tokens import Principal
from server.domain.context import Context
from server.domain.feeds.home import cursor_of, keyset, keyset_page
from server.domain.feeds.timelines import Entry
from server.domain.posts.entities import MAX_TAG_CHARS, normalize_tag
from server.domain.posts.views import render_posts
from server.errors import NotFound, ValidationFailed
from server.store import hashtags as store
from server.store.db import Row

_TAG_RE = re.compile(r"(?:\w|[\u0300-\u036f\u1ab0-\u1aff\u20d0-\u20ff\ufe20-\ufe2f])+")


def check_tag(raw: str) -> str:
    """The stored form of a tag from a path, or a 422 saying what is wrong with it."""
    text = raw[1:] if raw.startswith("#") else raw
    if not text:
        raise ValidationFailed.field("tag", "is empty")
    if len(text) > MAX_TAG_CHARS:
        raise ValidationFailed.field("tag", f"is longer than {MAX_TAG_CHARS} characters")
    tag = normalize_tag(text)
    if not _TAG_RE.fullmatch(tag) or tag.isdigit():
        raise ValidationFailed.field("tag", "is not a hashtag (letters, digits and _)")
    return tag


async def _hashtag(ctx: Context, viewer: Principal, raw: str) -> Row:
    row = await store.hashtag_with_follow(ctx.db, check_tag(raw), viewer.user_id)
    if row is None:
        raise NotFound("No post uses this hashtag.")
    return row


def _view(row: Row, following: bool | None = None) -> dict[str, Any]:
    return {
        "tag": row["tag"],
        "posts_count": row["posts_count"],
        "followers_count": row["followers_count"],
        "following": row["following"] if following is None else following,
        "created_at": row["created_at"],
    }


async def hashtag_info(ctx: Context, viewer: Principal, raw: str) -> dict[str, Any]:
    """The tag, how many published posts use it, how many follow it and whether you do."""
    return _view(await _hashtag(ctx, viewer, raw))


async def follow(ctx: Context, viewer: Principal, raw: str) -> dict[str, Any]:
    """Follow a hashtag: its posts join your home feed (idempotent)."""
    row = await _hashtag(ctx, viewer, raw)
    added = await store.follow_hashtag(ctx.db, viewer.user_id, row["id"], ctx.clock.now())
    return {**_view(row, True), "followers_count": row["followers_count"] + int(added)}


async def unfollow(ctx: Context, viewer: Principal, raw: str) -> None:
    tag = check_tag(raw)
    if not await store.unfollow_hashtag(ctx.db, viewer.user_id, tag):
        await _hashtag(ctx, viewer, tag)  # 404 for a tag they may not know of; else a no-op


async def hashtag_posts(
    ctx: Context, viewer: Principal, raw: str, *, limit: int, cursor: str | None
) -> dict[str, Any]:
    """Posts with the tag, newest first (post_hashtags_feed_idx), as far as the viewer may
    see them: blocks both ways, mutes, hides, private accounts and audiences applied."""
    row = await _hashtag(ctx, viewer, raw)

    async def batch(after: Entry | None, n: int) -> list[Entry]:
        return await store.hashtag_feed_scan(ctx.db, row["id"], after, n)

    async def shown(ids: list[uuid.UUID]) -> list[Row]:
        return await store.shown(ctx.db, viewer.user_id, ids, ctx.clock.now())

    rows, next_entry = await keyset_page(batch, shown, keyset(cursor), limit)
    return {
        "tag": row["tag"],
        "items": await render_posts(ctx, viewer.user_id, rows),
        "next_cursor": cursor_of(next_entry) if next_entry else None,
    }
