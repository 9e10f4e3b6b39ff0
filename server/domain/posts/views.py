"""Posts as a viewer sees them, a page at a time: bylines, collaborators, entities and the
commerce cards, drawn with a fixed number of queries whatever the page size (one per kind of
thing drawn, each batched over the page; kinds no post links cost nothing).

Cards the viewer may not see (a blocked seller's product, ...) are left out of that viewer's
page; groups are drawn live (status, spots, time left as of now).
"""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from server.domain import cards
from server.domain.context import Context
from server.domain.posts import media as post_media
from server.domain.posts import polls
from server.store import commerce as commerce_store
from server.store import interactions as interactions_store
from server.store.commerce import reads as commerce_reads
from server.store.db import Row
from server.store.posts import reads as store


def user_brief(row: Row | None) -> dict[str, Any] | None:
    if row is None:
        return None
    return {
        "id": str(row["id"]),
        "username": row["username"],
        "display_name": row["display_name"],
        "profile_picture_url": row["profile_picture_url"],
        "is_verified": row["is_verified"],
    }


def byline(usernames: list[str]) -> str:
    """ "By @a", "By @a and @b", "By @a, @b and @c" (the spec's byline)."""
    names = [f"@{name}" for name in usernames]
    if len(names) <= 1:
        return "By " + "".join(names)
    return "By " + ", ".join(names[:-1]) + " and " + names[-1]


async def render_posts(
    ctx: Context, viewer: uuid.UUID, rows: list[Row], *, with_originals: bool = True
) -> list[dict[str, Any]]:
    """The posts `rows` (already checked visible to `viewer`) as the viewer sees them; reposts
    and quotes with their original (one level deep, drawn in the same batch as the page)."""
    if not rows:
        return []
    originals: list[Row] = []
    if with_originals:
        wanted = [r["original_post_id"] for r in rows if r["original_post_id"] is not None]
        if wanted:
            originals = await store.get_posts(ctx.db, wanted, viewer)
    # The page and its originals are read together: one query per kind of part for both
    # (not a second round of every query for the originals).
    drawn = await _draw(ctx, viewer, rows + originals)
    views = [drawn(row) for row in rows]
    if with_originals:
        by_id = {str(row["id"]): drawn(row) for row in originals}
        for view, row in zip(views, rows, strict=True):
            original_id = row["original_post_id"]
            view["is_repost"] = row["is_repost"]
            view["is_quote"] = row["is_quote"]
            view["original_post"] = by_id.get(str(original_id)) if original_id else None
            view["original_unavailable"] = (row["is_repost"] or row["is_quote"]) and (
                view["original_post"] is None
            )
    return views


async def _draw(
    ctx: Context, viewer: uuid.UUID, rows: list[Row]
) -> Callable[[Row], dict[str, Any]]:
    """Read every part of the posts `rows` in one batch; returns what draws one of them (a new
    dict each call: a post both on the page and quoted by it is drawn twice, not shared)."""
    post_ids = list(dict.fromkeys(row["id"] for row in rows))
    # The parts of a page do not depend on each other: read them at once, each on its own
    # pooled connection, so a page waits for the slowest part, not for the sum of them.
    collaborators, linked, marks, poll_views, media_views = await asyncio.gather(
        store.collaborators_of(ctx.db, post_ids),
        _cards(ctx, viewer, post_ids),
        interactions_store.viewer_marks(ctx.db, post_ids, viewer),
        polls.polls_of_posts(ctx, post_ids, viewer),
        post_media.media_of_posts(ctx, post_ids, viewer),
    )
    people = {uid for row in rows for uid in row["author_ids"]}
    people.update(c["user_id"] for c in collaborators)
    briefs = await store.user_briefs(ctx.db, people)
    by_post: dict[uuid.UUID, list[Row]] = defaultdict(list)
    for c in collaborators:
        by_post[c["post_id"]].append(c)

    def draw(row: Row) -> dict[str, Any]:
        view = _view(
            row, viewer, briefs, by_post[row["id"]], linked[row["id"]], marks.get(row["id"])
        )
        view["poll"] = poll_views.get(row["id"])
        view["media"] = media_views.get(row["id"], [])
        return view

    return draw


def _view(
    row: Row,
    viewer: uuid.UUID,
    briefs: dict[uuid.UUID, Row],
    collaborators: list[Row],
    linked: dict[str, list[dict[str, Any]]],
    marks: set[str] | None,
) -> dict[str, Any]:
    authors = [briefs[uid] for uid in row["author_ids"] if uid in briefs]
    is_author = viewer in row["author_ids"]
    pending = [c for c in collaborators if c["status"] == "pending"]
    return {
        "id": str(row["id"]),
        "author": user_brief(briefs.get(row["author_id"])),
        "authors": [user_brief(a) for a in authors],
        "byline": byline([a["username"] for a in authors]),
        "content": row["content"],
        "entities": row["entities"],
        "post_type": row["post_type"],
        "status": row["status"],
        "visibility": row["visibility"],
        "is_collaborative": row["is_collaborative"],
        # Who has not answered yet: shown to the post's authors and to the invitees themselves.
        "pending_collaborators": [
            user_brief(briefs.get(c["user_id"]))
            for c in pending
            if is_author or c["user_id"] == viewer
        ],
        "likes_count": row["likes_count"],
        "comments_count": row["comments_count"],
        "reposts_count": row["reposts_count"],
        "bookmarks_count": row["bookmarks_count"],
        "liked": "liked" in (marks or ()),
        "bookmarked": "bookmarked" in (marks or ()),
        "is_edited": row["edit_count"] > 0,
        "edit_count": row["edit_count"],
        "edited_at": row["edited_at"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
        "published_at": row["published_at"],
        "publish_at": row["publish_at"],
        "products": linked.get("product", []),
        "shops": linked.get("shop", []),
        "events": linked.get("event", []),
        "groups": linked.get("group", []),
        "installment_plans": linked.get("plan", []),
    }


async def _cards(
    ctx: Context, viewer: uuid.UUID, post_ids: list[uuid.UUID]
) -> dict[uuid.UUID, dict[str, list[dict[str, Any]]]]:
    links = await store.links_of(ctx.db, post_ids)
    wanted: dict[str, list[uuid.UUID]] = defaultdict(list)
    for link in links:
        wanted[link["kind"]].append(link["entity_id"])
    q = ctx.db
    products, shops, events, groups, plans = await asyncio.gather(
        commerce_store.get_products(q, wanted["product"], viewer),
        commerce_reads.get_shops(q, wanted["shop"], viewer),
        commerce_store.get_events(q, wanted["event"], viewer),
        commerce_store.get_groups(q, wanted["group"], viewer),
        commerce_store.get_plans(q, wanted["plan"], viewer),
    )
    joined = await commerce_reads.has_joined(q, list(groups), viewer) if groups else set()
    now = ctx.clock.now()
    drawn: dict[tuple[str, uuid.UUID], dict[str, Any] | None] = {}

    def card(kind: str, entity_id: uuid.UUID) -> dict[str, Any] | None:
        """Each entity's card drawn once per page (posts often link the same products)."""
        key = (kind, entity_id)
        if key not in drawn:
            if kind == "product" and entity_id in products:
                drawn[key] = cards.product_card(products[entity_id])
            elif kind == "shop" and entity_id in shops:
                drawn[key] = cards.shop_card(shops[entity_id])
            elif kind == "event" and entity_id in events:
                drawn[key] = cards.event_card(events[entity_id], now)
            elif kind == "group" and entity_id in groups:
                drawn[key] = cards.group_card(
                    groups[entity_id], now, viewer_joined=entity_id in joined
                )
            elif kind == "plan" and entity_id in plans:
                drawn[key] = cards.plan_card(plans[entity_id])
            else:
                drawn[key] = None  # out of the viewer's sight (a block), or gone
        return drawn[key]

    out: dict[uuid.UUID, dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for link in links:
        kind, entity_id = link["kind"], link["entity_id"]
        shown = card(kind, entity_id)
        if shown is None:
            continue
        if kind == "shop":
            shown = {**shown, "mention_type": link["mention_type"]}
        elif kind == "plan":
            shown = {**shown, "is_featured": link["is_featured"]}
        out[link["post_id"]][kind].append(shown)
    return out
