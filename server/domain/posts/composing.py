"""What a post may hold, checked and resolved before it is written: its text and type, the
entities in the text (who and which shops it mentions), the co-authors it invites and the
commerce items it links. Shared by creating and editing, so both apply the same rules.

Resolution happens as the author: a mention of someone the author blocked (or who blocked
them) stays plain text, as does a `$shop` whose owner and the author blocked each other; an id
the author cannot see is refused as unknown (422), never told apart from an absent one.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from server.domain.auth_tokens import Principal
from server.domain.cards import group_status
from server.domain.context import Context
from server.domain.posts import entities as parsing
from server.domain.posts.commands import MAX_CONTENT, PlanLinkIn
from server.domain.text import has_visible_text
from server.errors import ValidationFailed
from server.store import commerce as commerce_store
from server.store import graph as graph_store
from server.store.commerce import reads as commerce_reads
from server.store.db import Queries
from server.store.posts import reads as store


def check_text(content: str, post_type: str) -> str:
    """The post's text, without surrounding whitespace; 422 when too long or, for a text post,
    empty (or only invisible characters)."""
    text = content.strip()
    if len(text) > MAX_CONTENT:
        raise ValidationFailed.field(
            "content", f"is {len(text)} characters long; a post holds at most {MAX_CONTENT}"
        )
    if post_type == "text" and not has_visible_text(text):
        raise ValidationFailed.field("content", "a text post needs some text")
    return text


@dataclass
class Resolved:
    """A text's entities as stored, and whom they point at."""

    entities: list[dict[str, Any]]
    mentioned: list[uuid.UUID]
    shops: dict[uuid.UUID, uuid.UUID] = field(default_factory=dict)  # shop id -> owner id
    hashtags: list[str] = field(default_factory=list)


async def resolve_text(q: Queries, author: uuid.UUID, text: str) -> Resolved:
    """Scan `text` and resolve its mentions and `$shop`s as `author` (two queries, plus one
    for blocks when someone is mentioned)."""
    found = parsing.scan(text)
    usernames = sorted({c.key for c in found if c.kind == "mention"})
    users = {row["username"]: row["id"] for row in await store.users_by_usernames(q, usernames)}
    if users:
        blocked = await graph_store.blocked_either_way_among(q, author, list(users.values()))
        users = {name: uid for name, uid in users.items() if uid not in blocked}
    handles = [c.key for c in found if c.kind == "shop"]
    shops = await commerce_store.get_shops_by_handles(q, handles, author)
    entities = parsing.render(
        found, users=users, shops={handle: row["id"] for handle, row in shops.items()}
    )
    return Resolved(
        entities=entities,
        mentioned=[uid for name, uid in users.items() if uid != author],
        shops={row["id"]: row["owner_id"] for row in shops.values()},
        hashtags=parsing.hashtags(text),
    )


async def check_collaborators(
    q: Queries, author: uuid.UUID, user_ids: list[uuid.UUID], *, limit: int, already: int = 0
) -> list[uuid.UUID]:
    """Co-authors `author` may invite: existing active users other than themselves, with no
    block between them, at most `limit` in all (`already` counts those on the post; the spec
    says 5-10: settings.posts.max_collaborators)."""
    wanted = [uid for uid in user_ids if uid != author]
    if len(wanted) != len(user_ids):
        raise ValidationFailed.field("collaborator_ids", "you are already the post's author")
    if already + len(wanted) > limit:
        raise ValidationFailed.field("collaborator_ids", f"a post has at most {limit} co-authors")
    active = await store.active_users(q, wanted)
    blocked = await graph_store.blocked_either_way_among(q, author, wanted) if wanted else set()
    unknown = [uid for uid in wanted if uid not in active or uid in blocked]
    if unknown:
        raise ValidationFailed.field(
            "collaborator_ids", f"{unknown[0]} is not a user you can invite"
        )
    return wanted


@dataclass
class Links:
    """Commerce links checked visible to the author; None: that kind is not being set."""

    products: list[uuid.UUID] | None = None
    shops: list[tuple[uuid.UUID, str]] | None = None
    events: list[uuid.UUID] | None = None
    groups: list[uuid.UUID] | None = None
    plans: list[tuple[uuid.UUID, uuid.UUID, bool]] | None = None

    def as_kwargs(self) -> dict[str, Any]:
        return {
            "products": self.products,
            "shops": self.shops,
            "events": self.events,
            "groups": self.groups,
            "plans": self.plans,
        }


def _unknown(field_name: str, wanted: list[uuid.UUID], found: Any, what: str) -> None:
    missing = [i for i in wanted if i not in found]
    if missing:
        raise ValidationFailed.field(field_name, f"{missing[0]} is not {what} you can see")


async def resolve_links(
    ctx: Context,
    q: Queries,
    actor: Principal,
    *,
    product_ids: list[uuid.UUID] | None,
    shop_ids: list[uuid.UUID] | None,
    event_ids: list[uuid.UUID] | None,
    group_ids: list[uuid.UUID] | None,
    plans: list[PlanLinkIn] | None,
) -> Links:
    """The links as given, each checked (one batched query per kind given): visible to the
    author; a buy-together group open for joining at the time it is linked."""
    viewer = actor.user_id
    links = Links()
    if product_ids is not None:
        found = await commerce_store.get_products(q, product_ids, viewer)
        _unknown("product_ids", product_ids, found, "a product")
        links.products = list(product_ids)
    if shop_ids is not None:
        found = await commerce_reads.get_shops(q, shop_ids, viewer)
        _unknown("shop_ids", shop_ids, found, "a shop")
        links.shops = [(shop_id, "tag") for shop_id in shop_ids]
    if event_ids is not None:
        found = await commerce_store.get_events(q, event_ids, viewer)
        _unknown("event_ids", event_ids, found, "an event")
        links.events = list(event_ids)
    if group_ids is not None:
        groups = await commerce_store.get_groups(q, group_ids, viewer)
        _unknown("group_ids", group_ids, groups, "a buy-together group")
        now = ctx.clock.now()
        for group_id in group_ids:
            row = groups[group_id]
            status = group_status(
                participant_count=row["participant_count"],
                total_spots=row["total_spots"],
                expires_at=row["expires_at"],
                now=now,
                state=row["state"],
            )
            if status not in ("open", "almost_full"):
                raise ValidationFailed.field(
                    "group_ids", f"the buy-together group {group_id} is {status}: link open ones"
                )
        links.groups = list(group_ids)
    if plans is not None:
        wanted = [plan.plan_id for plan in plans]
        found = await commerce_store.get_plans(q, wanted, viewer)
        _unknown("plans", wanted, found, "an installment plan")
        links.plans = [
            (plan.plan_id, found[plan.plan_id]["product_id"], plan.is_featured) for plan in plans
        ]
    return links


async def resolve_links_of(ctx: Context, q: Queries, actor: Principal, command: Any) -> Links:
    """`resolve_links` for a create or edit command (its `product_ids`, `shop_ids`, ...)."""
    return await resolve_links(
        ctx,
        q,
        actor,
        product_ids=command.product_ids,
        shop_ids=command.shop_ids,
        event_ids=command.event_ids,
        group_ids=command.group_ids,
        plans=command.plans,
    )


def with_shop_mentions(
    links: Links, current_tags: list[tuple[uuid.UUID, str]], resolved: Resolved
) -> Links:
    """The shop links to store: the explicit tags (given now, or as they were) followed by the
    text's `$shop` mentions that are not also tagged."""
    tags = (
        links.shops if links.shops is not None else [s for s in current_tags if s[1] != "mention"]
    )
    tagged = {shop_id for shop_id, _ in tags}
    mentions = [(shop_id, "mention") for shop_id in resolved.shops if shop_id not in tagged]
    return Links(
        products=links.products,
        shops=list(tags) + mentions,
        events=links.events,
        groups=links.groups,
        plans=links.plans,
    )
