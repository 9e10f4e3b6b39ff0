"""Commerce look-ups: search (products, shops, events), a user's buy-together groups, the entity
reads with their cards, and a product's installment plans (list and comparison).

Every read is on behalf of a viewer: the store leaves out what a seller, shop owner, organizer
or group creator and the viewer who blocked each other (either way) would show; a single
entity is resolved through the access module (NotFound, as if absent).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal

from server.domain import access, cards
from server.domain.auth_tokens import Principal
from server.domain.context import Context
from server.errors import Forbidden, ValidationFailed
from server.pagination import decode_cursor, decode_id_cursor, page
from server.store.commerce import reads as store
from server.store.db import Row

MAX_COMPARE_PLANS = 6


def _rank_cursor(query: str | None, cursor: str | None) -> Any:
    """The keyset the previous page ended at: (rank, id) with a query, else the id."""
    if store.prefix_tsquery(query) is None:
        return decode_id_cursor(cursor)
    values = decode_cursor(cursor, 2)
    if values is None:
        return None
    try:
        rank, last_id = float(values[0]), uuid.UUID(str(values[1]))
    except (TypeError, ValueError):
        rank, last_id = -1.0, None
    if last_id is None or not 0.0 <= rank <= 1e30:
        raise ValidationFailed.field("cursor", "is not a cursor this list produced")
    return rank, last_id


def _rank_key(query: str | None) -> Callable[[Row], Any]:
    if store.prefix_tsquery(query) is None:
        return lambda row: str(row["id"])
    return lambda row: (row["rank"], str(row["id"]))


async def search_products(
    ctx: Context,
    viewer: Principal,
    *,
    query: str | None,
    shop_id: uuid.UUID | None,
    limit: int,
    cursor: str | None,
) -> dict[str, Any]:
    rows = await store.search_products(
        ctx.db,
        query=query,
        viewer=viewer.user_id,
        limit=limit,
        after=_rank_cursor(query, cursor),
        shop_id=shop_id,
    )
    rows, next_cursor = page(rows, limit, _rank_key(query))
    return {"items": [cards.product_card(row) for row in rows], "next_cursor": next_cursor}


async def search_shops(
    ctx: Context, viewer: Principal, *, query: str | None, limit: int, cursor: str | None
) -> dict[str, Any]:
    rows = await store.search_shops(
        ctx.db, query=query, viewer=viewer.user_id, limit=limit, after=_rank_cursor(query, cursor)
    )
    rows, next_cursor = page(rows, limit, _rank_key(query))
    return {"items": [cards.shop_card(row) for row in rows], "next_cursor": next_cursor}


async def search_events(
    ctx: Context,
    viewer: Principal,
    *,
    query: str | None,
    include_past: bool,
    limit: int,
    cursor: str | None,
) -> dict[str, Any]:
    if store.prefix_tsquery(query) is not None:
        after = _rank_cursor(query, cursor)
        key = _rank_key(query)
    else:
        values = decode_cursor(cursor, 2)
        after = None
        if values is not None:
            try:
                after = (datetime.fromisoformat(values[0]), uuid.UUID(str(values[1])))
            except (TypeError, ValueError):
                raise ValidationFailed.field(
                    "cursor", "is not a cursor this list produced"
                ) from None

        def key(row: Row) -> Any:
            return (row["starts_at"].isoformat(), str(row["id"]))

    rows = await store.search_events(
        ctx.db,
        query=query,
        viewer=viewer.user_id,
        limit=limit,
        after=after,
        include_past=include_past,
    )
    rows, next_cursor = page(rows, limit, key)
    now = ctx.clock.now()
    return {"items": [cards.event_card(row, now) for row in rows], "next_cursor": next_cursor}


GroupStatusFilter = Literal["active", "open", "almost_full", "full", "expired", "cancelled", "any"]


async def list_groups(
    ctx: Context,
    viewer: Principal,
    *,
    user_id: uuid.UUID | None,
    status: str,
    limit: int,
    cursor: str | None,
) -> dict[str, Any]:
    """Groups the user created or joined (the post-creation "link a group" picker). Which
    groups someone joined is their own business: only they may list them."""
    user_id = user_id or viewer.user_id
    if user_id != viewer.user_id and not viewer.is_moderator:
        raise Forbidden("You can only list your own buy-together groups.")
    rows = await store.list_user_groups(
        ctx.db,
        user_id=user_id,
        viewer=viewer.user_id,
        status=status,
        limit=limit,
        after=decode_id_cursor(cursor),
    )
    rows, next_cursor = page(rows, limit, lambda row: str(row["id"]))
    joined = await store.has_joined(ctx.db, [row["id"] for row in rows], viewer.user_id)
    now = ctx.clock.now()
    return {
        "items": [cards.group_card(row, now, viewer_joined=row["id"] in joined) for row in rows],
        "next_cursor": next_cursor,
    }


_JOINED_COLUMNS = frozenset(
    {
        "product_name",
        "product_images",
        "product_price",
        "product_currency",
        "product_owner_id",
        "product_shop_id",
        "rank",
    }
)


def _view(row: Row, card: dict[str, Any], drop: tuple[str, ...] = ()) -> dict[str, Any]:
    """An entity as the API returns it: its stored fields plus its ready-to-draw card."""
    view = {k: v for k, v in row.items() if k not in drop and k not in _JOINED_COLUMNS}
    view["card"] = card
    return view


async def get_product_view(ctx: Context, viewer: Principal, product_id: uuid.UUID) -> dict:
    row = await access.access_product(ctx, ctx.db, viewer, product_id)
    return _view(row, cards.product_card(row))


async def get_shop_view(ctx: Context, viewer: Principal, ref: str) -> dict[str, Any]:
    """A shop by id or by handle (`handle` or `$handle`)."""
    row = await access.access_shop(ctx, ctx.db, viewer, ref)
    return _view(row, cards.shop_card(row))


async def get_event_view(ctx: Context, viewer: Principal, event_id: uuid.UUID) -> dict:
    row = await access.access_event(ctx, ctx.db, viewer, event_id)
    return _view(row, cards.event_card(row, ctx.clock.now()))


async def get_group_view(ctx: Context, viewer: Principal, group_id: uuid.UUID) -> dict:
    row = await access.access_group(ctx, ctx.db, viewer, group_id)
    joined = group_id in await store.has_joined(ctx.db, [group_id], viewer.user_id)
    view = _view(row, cards.group_card(row, ctx.clock.now(), viewer_joined=joined))
    view["status"] = view["card"]["status"]
    return view


async def get_plan_view(ctx: Context, viewer: Principal, plan_id: uuid.UUID) -> dict:
    row = await access.access_plan(ctx, ctx.db, viewer, plan_id)
    return _view(row, cards.plan_card(row))


async def list_product_plans(
    ctx: Context, viewer: Principal, product_id: uuid.UUID, *, limit: int, cursor: str | None
) -> dict[str, Any]:
    product = await access.access_product(ctx, ctx.db, viewer, product_id)
    values = decode_cursor(cursor, 2)
    after = None
    if values is not None:
        try:
            after = (int(values[0]), uuid.UUID(str(values[1])))
        except (TypeError, ValueError):
            raise ValidationFailed.field("cursor", "is not a cursor this list produced") from None
    rows = await store.list_product_plans(ctx.db, product_id, limit, after)
    rows, next_cursor = page(rows, limit, lambda row: (row["duration_months"], str(row["id"])))
    return {
        "product": cards.product_card(product),
        "items": [cards.plan_card(row) for row in rows],
        "next_cursor": next_cursor,
    }


async def compare_plans(
    ctx: Context, viewer: Principal, product_id: uuid.UUID, plan_ids: list[uuid.UUID]
) -> dict[str, Any]:
    """The side-by-side comparison of the given plans of one product (2 to 6 of them)."""
    plan_ids = list(dict.fromkeys(plan_ids))
    if not 1 <= len(plan_ids) <= MAX_COMPARE_PLANS:
        raise ValidationFailed.field("plans", f"give 1 to {MAX_COMPARE_PLANS} plan ids")
    product = await access.access_product(ctx, ctx.db, viewer, product_id)
    plans = await store.get_plans(ctx.db, plan_ids, viewer.user_id)
    for plan_id in plan_ids:
        plan = plans.get(plan_id)
        if plan is None or plan["product_id"] != product_id:
            raise ValidationFailed.field("plans", f"{plan_id} is not a plan of this product")
    return cards.plan_comparison(product, [plans[i] for i in plan_ids])
