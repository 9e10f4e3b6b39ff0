"""The commerce read model's reads: shops, products, events, buy-together groups, plans.

Every read of what a user may see takes the viewer (required): rows whose owner (seller, shop
owner, organizer, group creator) and the viewer have blocked each other, either way, are left
out (server.store.visibility). A server read with no user looking passes `visibility.SYSTEM`.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from typing import Any

from server.store.db import Queries, Row
from server.store.visibility import Viewer, visible_to

SHOP_COLUMNS = """s.id, s.handle, s.name, s.owner_id, s.logo_url, s.description, s.is_verified,
    s.updated_at, s.ingested_at"""
PRODUCT_COLUMNS = """p.id, p.shop_id, p.owner_id, p.name, p.description, p.images, p.price,
    p.currency, p.is_available, p.updated_at, p.ingested_at,
    s.handle AS shop_handle, s.name AS shop_name, s.logo_url AS shop_logo_url"""
EVENT_COLUMNS = """e.id, e.organizer_id, e.shop_id, e.title, e.description, e.image_url,
    e.starts_at, e.ends_at, e.timezone, e.location_name, e.location_address, e.is_online,
    e.ticket_status, e.price_min, e.price_max, e.currency, e.updated_at, e.ingested_at"""
_PRODUCT_REF = """p.name AS product_name, p.images AS product_images, p.price AS product_price,
    p.currency AS product_currency, p.owner_id AS product_owner_id, p.shop_id AS product_shop_id"""
GROUP_COLUMNS = f"""g.id, g.product_id, g.creator_id, g.target_price, g.individual_price,
    g.currency, g.total_spots, g.participant_count, g.expires_at, g.state, g.updated_at,
    g.ingested_at, {_PRODUCT_REF}"""
PLAN_COLUMNS = f"""i.id, i.product_id, i.duration_months, i.monthly_amount, i.total_cost,
    i.interest_rate, i.down_payment, i.currency, i.updated_at, i.ingested_at, {_PRODUCT_REF}"""


_WORD_RE = re.compile(r"\w+", re.UNICODE)


def prefix_tsquery(text: str | None, max_terms: int = 8) -> str | None:
    """`"gaming lap"` -> `gaming:* & lap:*` (every word, as a prefix: search as you type).
    Only word characters survive, so the result is always a valid tsquery."""
    words = _WORD_RE.findall((text or "").lower())[:max_terms]
    if not words:
        return None
    return " & ".join(f"{word}:*" for word in words)


# Reads: shops -----------------------------------------------------------------------------


async def get_shop(q: Queries, shop_id: uuid.UUID, viewer: Viewer) -> Row | None:
    visible, params = visible_to(viewer, "s.owner_id")
    return await q.fetchrow(
        f"""SELECT {SHOP_COLUMNS},
                   (SELECT count(*) FROM products p WHERE p.shop_id = s.id) AS products_count
            FROM shops s WHERE s.id = %(id)s AND {visible}""",
        {"id": shop_id, **params},
    )


async def get_shops(
    q: Queries, shop_ids: Iterable[uuid.UUID], viewer: Viewer
) -> dict[uuid.UUID, Row]:
    return await _visible_by_id(q, SHOP_COLUMNS, "shops s", "s.id", "s.owner_id", shop_ids, viewer)


async def get_shop_by_handle(q: Queries, handle: str, viewer: Viewer) -> Row | None:
    visible, params = visible_to(viewer, "s.owner_id")
    return await q.fetchrow(
        f"""SELECT {SHOP_COLUMNS},
                   (SELECT count(*) FROM products p WHERE p.shop_id = s.id) AS products_count
            FROM shops s WHERE s.handle = lower(%(handle)s) AND {visible}""",
        {"handle": handle, **params},
    )


async def get_shops_by_handles(
    q: Queries, handles: Iterable[str], viewer: Viewer
) -> dict[str, Row]:
    """`$shopname` resolution: handle (lower case) -> shop, for the handles that exist."""
    visible, params = visible_to(viewer, "s.owner_id")
    wanted = sorted({h.lower().lstrip("$") for h in handles})
    if not wanted:
        return {}
    rows = await q.fetch(
        f"""SELECT {SHOP_COLUMNS} FROM shops s
            WHERE s.handle = ANY(%(handles)s) AND {visible}""",
        {"handles": wanted, **params},
    )
    return {row["handle"]: row for row in rows}


async def search_shops(
    q: Queries,
    *,
    query: str | None,
    viewer: Viewer,
    limit: int,
    after: tuple[float, uuid.UUID] | uuid.UUID | None,
) -> list[Row]:
    visible, params = visible_to(viewer, "s.owner_id")
    return await _ranked_or_recent(
        q,
        select=f"SELECT {SHOP_COLUMNS}",
        source="shops s",
        alias="s",
        where=[visible],
        params=params,
        query=query,
        limit=limit,
        after=after,
    )


async def _visible_by_id(
    q: Queries,
    columns: str,
    source: str,
    id_column: str,
    owner_column: str,
    ids: Iterable[uuid.UUID],
    viewer: Viewer,
) -> dict[uuid.UUID, Row]:
    """Rows of `source` by id (one query, an index scan), left out where the owner and the
    viewer have blocked each other (not for `SYSTEM`)."""
    wanted = list(dict.fromkeys(ids))
    if not wanted:
        return {}
    visible, params = visible_to(viewer, owner_column)
    rows = await q.fetch(
        f"""SELECT {columns} FROM {source}
            WHERE {id_column} = ANY(%(ids)s) AND {visible}""",
        {"ids": wanted, **params},
    )
    return {row["id"]: row for row in rows}


# Reads: products --------------------------------------------------------------------------


async def get_product(q: Queries, product_id: uuid.UUID, viewer: Viewer) -> Row | None:
    """A product with its shop (`shop_name`, `shop_handle`, `shop_logo_url`), or None; None
    also when the seller and the viewer have blocked each other (not for `SYSTEM`)."""
    return (await get_products(q, [product_id], viewer)).get(product_id)


async def get_products(
    q: Queries, product_ids: Iterable[uuid.UUID], viewer: Viewer
) -> dict[uuid.UUID, Row]:
    return await _visible_by_id(
        q,
        PRODUCT_COLUMNS,
        "products p JOIN shops s ON s.id = p.shop_id",
        "p.id",
        "p.owner_id",
        product_ids,
        viewer,
    )


async def search_products(
    q: Queries,
    *,
    query: str | None,
    viewer: Viewer,
    limit: int,
    after: tuple[float, uuid.UUID] | uuid.UUID | None,
    shop_id: uuid.UUID | None = None,
) -> list[Row]:
    visible, params = visible_to(viewer, "p.owner_id")
    where = [visible]
    if shop_id is not None:
        where.append("p.shop_id = %(shop_id)s")
    return await _ranked_or_recent(
        q,
        select=f"SELECT {PRODUCT_COLUMNS}",
        source="products p JOIN shops s ON s.id = p.shop_id",
        alias="p",
        where=where,
        params={**params, "shop_id": shop_id},
        query=query,
        limit=limit,
        after=after,
    )


async def _ranked_or_recent(
    q: Queries,
    *,
    select: str,
    source: str,
    alias: str,
    where: list[str],
    params: dict[str, Any],
    query: str | None,
    limit: int,
    after: Any,
) -> list[Row]:
    """Full-text (GIN) matches ordered by (rank, id) descending, or, with no query, everything
    newest first (keyset on the UUIDv7 primary key)."""
    tsquery = prefix_tsquery(query)
    params = {**params, "limit": limit + 1}
    if tsquery is None:
        if after is not None:
            where = [*where, f"{alias}.id < %(after_id)s"]
            params["after_id"] = after
        return await q.fetch(
            f"""{select} FROM {source} WHERE {" AND ".join(where)}
                ORDER BY {alias}.id DESC LIMIT %(limit)s""",
            params,
        )
    params["tsq"] = tsquery
    outer = ""
    if after is not None:
        outer = "WHERE (x.rank, x.id) < (%(after_rank)s::real, %(after_id)s)"
        params["after_rank"], params["after_id"] = after
    return await q.fetch(
        f"""SELECT * FROM (
                {select}, ts_rank({alias}.search, tsq) AS rank
                FROM {source}, to_tsquery('simple', %(tsq)s) tsq
                WHERE {alias}.search @@ tsq AND {" AND ".join(where)}
            ) x {outer}
            ORDER BY x.rank DESC, x.id DESC LIMIT %(limit)s""",
        params,
    )


# Reads: events ----------------------------------------------------------------------------

MAX_EVENT_DAYS = 366  # ingest refuses longer events, which bounds the "upcoming" index scan


async def get_event(q: Queries, event_id: uuid.UUID, viewer: Viewer) -> Row | None:
    return (await get_events(q, [event_id], viewer)).get(event_id)


async def get_events(
    q: Queries, event_ids: Iterable[uuid.UUID], viewer: Viewer
) -> dict[uuid.UUID, Row]:
    return await _visible_by_id(
        q, EVENT_COLUMNS, "commerce_events e", "e.id", "e.organizer_id", event_ids, viewer
    )


async def search_events(
    q: Queries,
    *,
    query: str | None,
    viewer: Viewer,
    limit: int,
    after: Any,
    include_past: bool = False,
) -> list[Row]:
    """With a query: matches by (rank, id) descending. Without: soonest first by
    (starts_at, id). Unless `include_past`, only events that have not ended."""
    visible, visible_params = visible_to(viewer, "e.organizer_id")
    where = [visible]
    if not include_past:
        where.append(
            f"""e.starts_at >= now() - interval '{MAX_EVENT_DAYS} days'
                AND coalesce(e.ends_at, e.starts_at) >= now()"""
        )
    tsquery = prefix_tsquery(query)
    if tsquery is not None:
        return await _ranked_or_recent(
            q,
            select=f"SELECT {EVENT_COLUMNS}",
            source="commerce_events e",
            alias="e",
            where=where,
            params=visible_params,
            query=query,
            limit=limit,
            after=after,
        )
    params: dict[str, Any] = {**visible_params, "limit": limit + 1}
    if after is not None:
        where.append("(e.starts_at, e.id) > (%(after_start)s, %(after_id)s)")
        params["after_start"], params["after_id"] = after
    return await q.fetch(
        f"""SELECT {EVENT_COLUMNS} FROM commerce_events e WHERE {" AND ".join(where)}
            ORDER BY e.starts_at, e.id LIMIT %(limit)s""",
        params,
    )


# Reads: groups ----------------------------------------------------------------------------

_GROUP_SOURCE = "buy_together_groups g JOIN products p ON p.id = g.product_id"

# SQL twins of server.domain.cards.group_status (tests keep the two in step).
GROUP_STATUS_SQL = {
    "cancelled": "g.state = 'cancelled'",
    "full": "g.state = 'active' AND g.participant_count >= g.total_spots",
    "expired": """g.state = 'active' AND g.participant_count < g.total_spots
                  AND g.expires_at <= now()""",
    "active": """g.state = 'active' AND g.participant_count < g.total_spots
                 AND g.expires_at > now()""",
    "almost_full": """g.state = 'active' AND g.expires_at > now()
                      AND g.total_spots - g.participant_count BETWEEN 1 AND 2""",
    "open": """g.state = 'active' AND g.expires_at > now()
               AND g.total_spots - g.participant_count > 2""",
    "any": "true",
}


async def get_group(q: Queries, group_id: uuid.UUID, viewer: Viewer) -> Row | None:
    return (await get_groups(q, [group_id], viewer)).get(group_id)


async def get_groups(
    q: Queries, group_ids: Iterable[uuid.UUID], viewer: Viewer
) -> dict[uuid.UUID, Row]:
    return await _visible_by_id(
        q, GROUP_COLUMNS, _GROUP_SOURCE, "g.id", "g.creator_id", group_ids, viewer
    )


async def list_user_groups(
    q: Queries,
    *,
    user_id: uuid.UUID,
    viewer: Viewer,
    status: str,
    limit: int,
    after: uuid.UUID | None,
) -> list[Row]:
    """Groups `user_id` created or has joined, newest first, filtered by derived status; left
    out where the creator and the viewer have blocked each other (joined before the block)."""
    extra = " AND g.id < %(after)s" if after is not None else ""
    visible, params = visible_to(viewer, "g.creator_id")
    return await q.fetch(
        f"""SELECT {GROUP_COLUMNS} FROM {_GROUP_SOURCE}
            WHERE g.id IN (
                SELECT id FROM buy_together_groups WHERE creator_id = %(user)s
                UNION
                SELECT group_id FROM buy_together_participants WHERE user_id = %(user)s AND joined
            ) AND {GROUP_STATUS_SQL[status]}{extra} AND {visible}
            ORDER BY g.id DESC LIMIT %(limit)s""",
        {"user": user_id, "after": after, "limit": limit + 1, **params},
    )


async def has_joined(q: Queries, group_ids: list[uuid.UUID], user_id: uuid.UUID) -> set[uuid.UUID]:
    if not group_ids:
        return set()
    rows = await q.fetch(
        """SELECT group_id FROM buy_together_participants
           WHERE group_id = ANY(%s) AND user_id = %s AND joined""",
        (group_ids, user_id),
    )
    return {row["group_id"] for row in rows}


# Reads: installment plans -----------------------------------------------------------------

_PLAN_SOURCE = "installment_plans i JOIN products p ON p.id = i.product_id"


async def get_plan(q: Queries, plan_id: uuid.UUID, viewer: Viewer) -> Row | None:
    return (await get_plans(q, [plan_id], viewer)).get(plan_id)


async def get_plans(
    q: Queries, plan_ids: Iterable[uuid.UUID], viewer: Viewer
) -> dict[uuid.UUID, Row]:
    return await _visible_by_id(
        q, PLAN_COLUMNS, _PLAN_SOURCE, "i.id", "p.owner_id", plan_ids, viewer
    )


async def list_product_plans(
    q: Queries, product_id: uuid.UUID, limit: int, after: tuple[int, uuid.UUID] | None
) -> list[Row]:
    """A product's plans, shortest first (keyset on (duration_months, id))."""
    extra = " AND (i.duration_months, i.id) > (%(after_d)s, %(after_id)s)" if after else ""
    after_d, after_id = after or (None, None)
    return await q.fetch(
        f"""SELECT {PLAN_COLUMNS} FROM {_PLAN_SOURCE}
            WHERE i.product_id = %(product)s{extra}
            ORDER BY i.duration_months, i.id LIMIT %(limit)s""",
        {"product": product_id, "after_d": after_d, "after_id": after_id, "limit": limit + 1},
    )


# Counts (seed-demo) ------------------------------------------------------------------------


async def count_rows(q: Queries) -> dict[str, int]:
    row = await q.fetchrow_one(
        """SELECT (SELECT count(*) FROM shops) AS shops,
                  (SELECT count(*) FROM products) AS products,
                  (SELECT count(*) FROM commerce_events) AS events,
                  (SELECT count(*) FROM buy_together_groups) AS groups,
                  (SELECT count(*) FROM installment_plans) AS installment_plans"""
    )
    return dict(row)
