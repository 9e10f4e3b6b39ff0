"""Lists (curated feeds): named collections of users, private (only the owner sees them) or
public. The owner creates, renames, describes, deletes, and adds or removes members (only
accounts the owner can see: active, no block either way); anyone who may see the list reads its
members and its feed: the members' posts as *they* (the reader) may see them, newest first."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import datetime
from typing import Any, Final

from server.domain.access import access_list
from server.domain.accounts import profile_view
from server.domain.auth_tokens import Principal
from server.domain.context import Context
from server.domain.posts.views import render_posts
from server.domain.search.commands import ListIn, ListMemberIn, ListPatch
from server.errors import Conflict, NotFound, ValidationFailed
from server.ids import new_id
from server.pagination import decode_id_cursor, decode_time_id_cursor, page
from server.store import lists as store
from server.store.db import Row
from server.store.posts import reads as posts_store

MAX_LISTS: Final = 500
MAX_MEMBERS: Final = 5_000


def _text(name: str, raw: str | None) -> str | None:
    if raw is None:
        return None
    text = " ".join(raw.split())
    if name == "name" and not text:
        raise ValidationFailed.field("name", "a list needs a name")
    return text or None


def list_view(row: Row, viewer: uuid.UUID) -> dict[str, Any]:
    return {
        "id": row["id"],
        "owner_id": row["owner_id"],
        "name": row["name"],
        "description": row["description"],
        "is_private": row["is_private"],
        "members_count": row["members_count"],
        "is_owner": row["owner_id"] == viewer,
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }


async def create_list(ctx: Context, actor: Principal, command: ListIn) -> dict[str, Any]:
    name = _text("name", command.name)
    assert name is not None
    async with ctx.db.transaction() as tx:
        if await store.count_lists(tx, actor.user_id) >= MAX_LISTS:
            raise Conflict(f"You have {MAX_LISTS} lists, the most one can have.")
        row = await store.create_list(
            tx,
            new_id(),
            actor.user_id,
            name,
            _text("description", command.description),
            command.is_private,
            ctx.clock.now(),
        )
    return list_view(row, actor.user_id)


async def my_lists(
    ctx: Context, actor: Principal, *, limit: int, cursor: str | None
) -> dict[str, Any]:
    """Your lists, newest first."""
    rows = await store.lists_of(ctx.db, actor.user_id, decode_id_cursor(cursor), limit + 1)
    rows, next_cursor = page(rows, limit, lambda r: str(r["id"]))
    return {"items": [list_view(r, actor.user_id) for r in rows], "next_cursor": next_cursor}


async def get_list(ctx: Context, viewer: Principal, list_id: uuid.UUID) -> dict[str, Any]:
    return list_view(await access_list(ctx, ctx.db, viewer, list_id), viewer.user_id)


async def update_list(
    ctx: Context, actor: Principal, list_id: uuid.UUID, command: ListPatch
) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    for name in command.model_fields_set:
        value = getattr(command, name)
        if name in ("name", "is_private") and value is None:
            raise ValidationFailed.field(name, "cannot be null")
        changes[name] = _text(name, value) if isinstance(value, str) else value
    async with ctx.db.transaction() as tx:
        await access_list(ctx, tx, actor, list_id, to_change=True)
        row = await store.update_list(tx, list_id, changes, ctx.clock.now())
    return list_view(row, actor.user_id)


async def delete_list(ctx: Context, actor: Principal, list_id: uuid.UUID) -> None:
    async with ctx.db.transaction() as tx:
        await access_list(ctx, tx, actor, list_id, to_change=True)
        await store.delete_list(tx, list_id)


async def add_member(
    ctx: Context, actor: Principal, list_id: uuid.UUID, command: ListMemberIn
) -> dict[str, Any]:
    """Add an account you can see (404 for one that blocked you, that you blocked, or that
    does not exist); adding a member twice is a no-op (`added: false`)."""
    async with ctx.db.transaction() as tx:
        row = await access_list(ctx, tx, actor, list_id, to_change=True)
        user = await store.visible_user(tx, command.user_id, actor.user_id)
        if user is None:
            raise NotFound("No such user.")
        if row["members_count"] >= MAX_MEMBERS:
            raise Conflict(f"A list has at most {MAX_MEMBERS} members.")
        added = await store.add_member(tx, new_id(), list_id, user["id"], ctx.clock.now())
    return {"list_id": list_id, "user_id": user["id"], "added": added}


async def remove_member(
    ctx: Context, actor: Principal, list_id: uuid.UUID, user_id: uuid.UUID
) -> None:
    async with ctx.db.transaction() as tx:
        await access_list(ctx, tx, actor, list_id, to_change=True)
        if not await store.remove_member(tx, list_id, user_id, ctx.clock.now()):
            raise NotFound("That user is not on this list.")


async def members(
    ctx: Context, viewer: Principal, list_id: uuid.UUID, *, limit: int, cursor: str | None
) -> dict[str, Any]:
    """The list's members, most recently added first (without accounts you cannot see)."""
    await access_list(ctx, ctx.db, viewer, list_id)
    rows = await store.members_page(
        ctx.db, list_id, viewer.user_id, decode_id_cursor(cursor), limit + 1
    )
    rows, next_cursor = page(rows, limit, lambda r: str(r["member_id"]))
    items = [
        {
            **profile_view(
                {k: v for k, v in r.items() if k not in ("member_id", "added_at")}, viewer.user_id
            ),
            "added_at": r["added_at"],
        }
        for r in rows
    ]
    return {"items": items, "next_cursor": next_cursor}


async def _feed_rows(
    ctx: Context,
    viewer: Principal,
    found: Row,
    before: tuple[datetime, uuid.UUID] | None,
    wanted: int,
) -> list[Row]:
    """`wanted` rows of the feed. Each member's scan stops at `per_member` rows: a page of 21
    over 50 members needs about 1 each, not 21 each (1,050 rows through the visibility rule).
    The page is exact unless some member filled their share within it (their next post could
    belong on the page too): then read again with 4x the share, up to `wanted` (exact by
    construction). Usually one query; at most three."""
    members = max(1, found["members_count"])
    per_member = min(wanted, max(2, -(-2 * wanted // members)))
    while True:
        rows = await store.feed(
            ctx.db, found["id"], viewer.user_id, ctx.clock.now(), before, wanted, per_member
        )
        if per_member >= wanted:
            return rows
        shares = Counter(row["author_id"] for row in rows)
        if not shares or max(shares.values()) < per_member:
            return rows
        per_member = min(wanted, per_member * 4)


async def feed(
    ctx: Context, viewer: Principal, list_id: uuid.UUID, *, limit: int, cursor: str | None
) -> dict[str, Any]:
    """The members' posts newest first, every visibility rule applied for you (blocks both
    ways, mutes, hidden posts, your muted words, followers-only, private accounts, deleted)."""
    found = await access_list(ctx, ctx.db, viewer, list_id)
    rows = await _feed_rows(ctx, viewer, found, decode_time_id_cursor(cursor), limit + 1)
    rows, next_cursor = page(rows, limit, lambda r: posts_store.keyset_of(r, "published_at"))
    return {"items": await render_posts(ctx, viewer.user_id, rows), "next_cursor": next_cursor}
