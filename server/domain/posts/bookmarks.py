"""Bookmarks and their collections, private to their owner (anyone else's ids are 404):
bookmark / unbookmark a post you can see (idempotent), your bookmarks newest first (all, or one
collection's), collections to create, list, rename and delete (with or without their
bookmarks), and moving a bookmark between collections. Also "hide / not interested"."""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import Field

from server.domain.access import access_post, check_published
from server.domain.auth_tokens import Principal
from server.domain.context import Context
from server.domain.messaging.commands import Command
from server.domain.posts import live
from server.domain.posts.views import render_posts
from server.errors import Conflict, NotFound, ValidationFailed
from server.ids import new_id
from server.pagination import decode_id_cursor, page
from server.store import interactions as store
from server.store.db import Queries, Row, UniqueViolation
from server.store.posts import reads as posts_store

NO_COLLECTION = "No such collection."
NO_BOOKMARK = "No such bookmark."


class BookmarkIn(Command):
    """Where to file the bookmark (default: no collection)."""

    collection_id: uuid.UUID | None = None


class CollectionIn(Command):
    """A collection's name (unique among yours, ignoring case)."""

    name: str = Field(min_length=1, max_length=100)


class MoveIn(Command):
    """The collection to move the bookmark to; null: out of any collection."""

    collection_id: uuid.UUID | None


def _name(raw: str) -> str:
    name = " ".join(raw.split())
    if not name:
        raise ValidationFailed.field("name", "a collection needs a name")
    return name


async def _own_collection(q: Queries, actor: Principal, collection_id: uuid.UUID) -> Row:
    row = await store.get_collection(q, actor.user_id, collection_id)
    if row is None:
        raise NotFound(NO_COLLECTION)
    return row


def _bookmark_view(row: Row) -> dict[str, Any]:
    return {
        "id": str(row["id"]),
        "post_id": str(row["post_id"]),
        "collection_id": str(row["collection_id"]) if row["collection_id"] else None,
        "created_at": row["created_at"],
    }


def _collection_view(row: Row) -> dict[str, Any]:
    return {
        "id": str(row["id"]),
        "name": row["name"],
        "bookmarks_count": row["bookmarks_count"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }


async def bookmark(
    ctx: Context, actor: Principal, post_id: uuid.UUID, command: BookmarkIn
) -> dict[str, Any]:
    async with ctx.db.transaction() as tx:
        post = await access_post(ctx, tx, actor, post_id)
        check_published(post)
        if command.collection_id is not None:
            await _own_collection(tx, actor, command.collection_id)
        row = await store.add_bookmark(
            tx, new_id(), actor.user_id, post_id, command.collection_id, ctx.clock.now()
        )
        created = row is not None
        if row is None:
            row = await store.get_bookmark(tx, actor.user_id, post_id)
            assert row is not None
    if created:
        live.counters_changed(ctx, post_id)
    return {**_bookmark_view(row), "created": created}


async def unbookmark(ctx: Context, actor: Principal, post_id: uuid.UUID) -> None:
    async with ctx.db.transaction() as tx:
        removed = await store.remove_bookmark(tx, actor.user_id, post_id)
    if removed:
        live.counters_changed(ctx, post_id)


async def list_bookmarks(
    ctx: Context,
    actor: Principal,
    *,
    collection_id: uuid.UUID | None = None,
    limit: int,
    cursor: str | None,
) -> dict[str, Any]:
    """Your bookmarks, newest first, each with the post as you see it now."""
    if collection_id is not None:
        await _own_collection(ctx.db, actor, collection_id)
    rows = await store.bookmarks_page(
        ctx.db, actor.user_id, collection_id, decode_id_cursor(cursor), limit + 1
    )
    rows, next_cursor = page(rows, limit, lambda r: str(r["id"]))
    posts = await _posts(ctx, actor, [r["post_id"] for r in rows])
    items = [
        {**_bookmark_view(r), "post": posts[r["post_id"]]} for r in rows if r["post_id"] in posts
    ]
    return {"items": items, "next_cursor": next_cursor}


async def _posts(ctx: Context, actor: Principal, ids: list[uuid.UUID]) -> dict[uuid.UUID, Any]:
    rows = await posts_store.get_posts(ctx.db, ids, actor.user_id)
    return {uuid.UUID(p["id"]): p for p in await render_posts(ctx, actor.user_id, rows)}


async def move_bookmark(
    ctx: Context, actor: Principal, bookmark_id: uuid.UUID, command: MoveIn
) -> dict[str, Any]:
    async with ctx.db.transaction() as tx:
        if command.collection_id is not None:
            await _own_collection(tx, actor, command.collection_id)
        row = await store.move_bookmark(tx, actor.user_id, bookmark_id, command.collection_id)
    if row is None:
        raise NotFound(NO_BOOKMARK)
    return _bookmark_view(row)


async def create_collection(
    ctx: Context, actor: Principal, command: CollectionIn
) -> dict[str, Any]:
    row = await store.create_collection(
        ctx.db, new_id(), actor.user_id, _name(command.name), ctx.clock.now()
    )
    if row is None:
        raise Conflict("You already have a collection with this name.")
    return _collection_view(row)


async def list_collections(
    ctx: Context, actor: Principal, *, limit: int, cursor: str | None
) -> dict[str, Any]:
    rows = await store.collections(ctx.db, actor.user_id, decode_id_cursor(cursor), limit + 1)
    rows, next_cursor = page(rows, limit, lambda r: str(r["id"]))
    return {"items": [_collection_view(r) for r in rows], "next_cursor": next_cursor}


async def get_collection(ctx: Context, actor: Principal, collection_id: uuid.UUID) -> dict:
    return _collection_view(await _own_collection(ctx.db, actor, collection_id))


async def rename_collection(
    ctx: Context, actor: Principal, collection_id: uuid.UUID, command: CollectionIn
) -> dict[str, Any]:
    try:
        row = await store.rename_collection(
            ctx.db, actor.user_id, collection_id, _name(command.name), ctx.clock.now()
        )
    except UniqueViolation:
        raise Conflict("You already have a collection with this name.") from None
    if row is None:
        raise NotFound(NO_COLLECTION)
    return _collection_view(row)


async def delete_collection(
    ctx: Context, actor: Principal, collection_id: uuid.UUID, *, with_bookmarks: bool
) -> None:
    async with ctx.db.transaction() as tx:
        if not await store.delete_collection(
            tx, actor.user_id, collection_id, with_bookmarks=with_bookmarks
        ):
            raise NotFound(NO_COLLECTION)


async def hide_post(ctx: Context, actor: Principal, post_id: uuid.UUID, *, hidden: bool) -> None:
    """Hide a post from your feeds ("not interested"), or show it again."""
    await access_post(ctx, ctx.db, actor, post_id)
    if hidden:
        await store.hide(ctx.db, actor.user_id, post_id, ctx.clock.now())
    else:
        await store.unhide(ctx.db, actor.user_id, post_id)
