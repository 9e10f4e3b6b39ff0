"""Media on posts (the PostMedia model) and image tags on them.

A post shows up to 10 of its author's own processed media, in the order given (only `ready`
ones: 409 while processing; anyone else's: 404 as if absent). Attaching clears their purge;
a deleted post, or an edit that drops a media, releases it (purged 30 days later unless
something else shows it). The post's type follows its media: images only -> `image`, one
video -> `video`, anything else -> `mixed`.

Image tags (the spec's Image Tagging): a user, product or shop at x / y percent (0-100) of an
image; added by the post's authors (20 per image), removable by them or by the tagged user;
a tagged user gets TAG_IMAGE and a tagged shop's owner SHOP_TAGGED (once the post is out);
nobody the author blocked or who blocked them can be tagged.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import timedelta
from decimal import Decimal
from typing import Any, Literal

from pydantic import Field

from server.domain import notifications
from server.domain.access import access_post, check_attachable, check_author
from server.domain.auth_tokens import Principal
from server.domain.context import Context
from server.domain.media.views import main_urls
from server.domain.messaging.commands import Command
from server.domain.notification_catalog import NotificationType
from server.errors import Forbidden, NotFound, ValidationFailed
from server.store import commerce as commerce_store
from server.store import graph as graph_store
from server.store import media as media_store
from server.store import post_media as store
from server.store.commerce import reads as commerce_reads
from server.store.db import Row, Transaction
from server.store.posts import reads as posts_store

MAX_MEDIA = 10
MAX_TAGS_PER_IMAGE = 20
RELEASED_RETENTION = timedelta(days=30)  # as long as a deleted post is kept


class TagIn(Command):
    """A tag at x / y percent of the image: exactly one of user_id, product_id, shop_id."""

    tag_type: Literal["user", "product", "shop"]
    user_id: uuid.UUID | None = None
    product_id: uuid.UUID | None = None
    shop_id: uuid.UUID | None = None
    x: Decimal = Field(ge=0, le=100, max_digits=5, decimal_places=2)
    y: Decimal = Field(ge=0, le=100, max_digits=5, decimal_places=2)


def post_type_for(requested: str | None, kinds: Sequence[str], has_poll: bool) -> str:
    """The post's type from its media (and poll); 422 if `requested` says otherwise."""
    if kinds and has_poll:
        raise ValidationFailed.field("media_ids", "a poll post carries no media")
    if not kinds:
        derived = "poll" if has_poll else "text"
    elif set(kinds) == {"image"}:
        derived = "image"
    elif list(kinds) == ["video"]:
        derived = "video"
    else:
        derived = "mixed"
    if requested is not None and requested != derived and not (requested == "mixed" and kinds):
        raise ValidationFailed.field(
            "post_type", f"is {requested!r} but the post's media and poll make it {derived!r}"
        )
    return requested or derived


async def check_media(
    tx: Transaction, actor: Principal, media_ids: Sequence[uuid.UUID]
) -> list[Row]:
    """The actor's own ready media, locked, in the order given."""
    if len(media_ids) > MAX_MEDIA:
        raise ValidationFailed.field("media_ids", f"a post shows at most {MAX_MEDIA} media")
    if len(set(media_ids)) != len(media_ids):
        raise ValidationFailed.field("media_ids", "lists the same media twice")
    if not media_ids:
        return []
    rows = await media_store.lock_many(tx, media_ids)
    check_attachable(actor, rows, list(media_ids))
    by_id = {row["id"]: row for row in rows}
    return [by_id[media_id] for media_id in media_ids]


async def attach(
    ctx: Context, tx: Transaction, post_id: uuid.UUID, media_ids: Sequence[uuid.UUID]
) -> None:
    """The post shows exactly `media_ids` now (checked with `check_media`); dropped ones are
    released."""
    now = ctx.clock.now()
    gone = await store.replace(tx, post_id, media_ids, now)
    if media_ids:
        await media_store.mark_attached(tx, media_ids, now)
    await release(ctx, tx, gone)


async def release(ctx: Context, tx: Transaction, media_ids: Sequence[uuid.UUID]) -> None:
    if media_ids:
        await media_store.release(tx, media_ids, ctx.clock.now() + RELEASED_RETENTION)


async def media_of_posts(
    ctx: Context, post_ids: list[uuid.UUID], viewer: uuid.UUID
) -> dict[uuid.UUID, list[dict[str, Any]]]:
    """The media of a page of posts with their tags (two queries; one without media)."""
    rows = await store.of_posts(ctx.db, post_ids)
    if not rows:
        return {}
    tags = await store.tags_of(ctx.db, post_ids, viewer)
    by_media: dict[tuple[uuid.UUID, uuid.UUID], list[dict[str, Any]]] = defaultdict(list)
    for tag in tags:
        by_media[(tag["post_id"], tag["media_id"])].append(tag_view(tag))
    out: dict[uuid.UUID, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        url, thumbnail_url = main_urls(ctx, row)
        out[row["post_id"]].append(
            {
                "id": str(row["id"]),
                "media_type": row["media_type"],
                "media_url": url,
                "thumbnail_url": thumbnail_url,
                "media_order": row["media_order"],
                "width": row["width"],
                "height": row["height"],
                "duration": round(row["duration_s"]) if row["duration_s"] is not None else None,
                "blurhash": row["blurhash"],
                "tags": by_media.get((row["post_id"], row["id"]), []),
            }
        )
    return out


def tag_view(row: Row) -> dict[str, Any]:
    return {
        "id": str(row["id"]),
        "media_id": str(row["media_id"]),
        "tag_type": row["tag_type"],
        "user_id": str(row["user_id"]) if row["user_id"] else None,
        "username": row.get("user_username"),
        "product_id": str(row["product_id"]) if row["product_id"] else None,
        "product_name": row.get("product_name"),
        "shop_id": str(row["shop_id"]) if row["shop_id"] else None,
        "shop_handle": row.get("shop_handle"),
        "x": str(row["x_position"]),
        "y": str(row["y_position"]),
        "created_at": row["created_at"],
    }


async def _image_of_post(
    ctx: Context, tx: Any, actor: Principal, post_id: uuid.UUID, media_id: uuid.UUID
) -> tuple[Row, Row]:
    post = await access_post(ctx, tx, actor, post_id)
    media = await store.post_media(tx, post_id, media_id)
    if media is None:
        raise NotFound("This post shows no such media.")
    return post, media


async def add_tag(
    ctx: Context, actor: Principal, post_id: uuid.UUID, media_id: uuid.UUID, command: TagIn
) -> dict[str, Any]:
    target = {"user": command.user_id, "product": command.product_id, "shop": command.shop_id}
    chosen = target[command.tag_type]
    if chosen is None or sum(v is not None for v in target.values()) != 1:
        kind = command.tag_type
        raise ValidationFailed.field(f"{kind}_id", f"a {kind} tag names exactly one {kind}")
    async with ctx.db.transaction() as tx:
        post, media = await _image_of_post(ctx, tx, actor, post_id, media_id)
        check_author(post, actor)
        if media["media_type"] != "image":
            raise ValidationFailed.field("media_id", "only images carry tags")
        if await store.count_tags(tx, post_id, media_id) >= MAX_TAGS_PER_IMAGE:
            raise ValidationFailed.field(
                "tag_type", f"an image carries at most {MAX_TAGS_PER_IMAGE} tags"
            )
        recipient = await _check_target(tx, actor, command.tag_type, chosen)
        row = await store.add_tag(
            tx,
            post_id=post_id,
            media_id=media_id,
            tag_type=command.tag_type,
            target=chosen,
            x=command.x,
            y=command.y,
            created_by=actor.user_id,
            at=ctx.clock.now(),
        )
        if post["status"] == "published" and recipient is not None:
            notification = (
                NotificationType.TAG_IMAGE
                if command.tag_type == "user"
                else NotificationType.SHOP_TAGGED
            )
            await notifications.notify(
                ctx,
                tx,
                recipient_id=recipient,
                type=notification,
                entity_type="post",
                entity_id=post_id,
                actor_id=actor.user_id,
                data={"post_id": str(post_id), "media_id": str(media_id)},
            )
        # As lists show it: with the username / product name / shop handle.
        shown = [
            t for t in await store.tags_of(tx, [post_id], actor.user_id) if t["id"] == row["id"]
        ]
    return tag_view(shown[0] if shown else row)


async def _check_target(
    tx: Transaction, actor: Principal, tag_type: str, target: uuid.UUID
) -> uuid.UUID | None:
    """The one to notify (a user, a shop's owner; None for a product), after checking the
    target exists and the author may tag it (no block; commerce items they can see)."""
    if tag_type == "user":
        active = await posts_store.active_users(tx, [target])
        if target not in active or await graph_store.is_blocked_either_way(
            tx, actor.user_id, target
        ):
            raise ValidationFailed.field("user_id", "is not a user you can tag")
        return target if target != actor.user_id else None
    if tag_type == "product":
        if not await commerce_store.get_products(tx, [target], actor.user_id):
            raise ValidationFailed.field("product_id", "is not a product you can see")
        return None
    shops = await commerce_reads.get_shops(tx, [target], actor.user_id)
    if not shops:
        raise ValidationFailed.field("shop_id", "is not a shop you can see")
    return shops[target]["owner_id"]


async def list_tags(
    ctx: Context, viewer: Principal, post_id: uuid.UUID, media_id: uuid.UUID
) -> dict[str, Any]:
    await _image_of_post(ctx, ctx.db, viewer, post_id, media_id)
    tags = await store.tags_of(ctx.db, [post_id], viewer.user_id)
    return {"items": [tag_view(t) for t in tags if t["media_id"] == media_id]}


async def delete_tag(
    ctx: Context, actor: Principal, post_id: uuid.UUID, media_id: uuid.UUID, tag_id: uuid.UUID
) -> None:
    """The post's authors remove any tag; a tagged user removes their own."""
    async with ctx.db.transaction() as tx:
        post, _ = await _image_of_post(ctx, tx, actor, post_id, media_id)
        tag = await store.get_tag(tx, tag_id)
        if tag is None or tag["post_id"] != post_id or tag["media_id"] != media_id:
            raise NotFound("No such tag.")
        if actor.user_id not in post["author_ids"] and tag["user_id"] != actor.user_id:
            raise Forbidden("Only the post's authors or the tagged user may remove a tag.")
        await store.delete_tag(tx, tag_id)
