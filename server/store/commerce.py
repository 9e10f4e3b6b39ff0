"""The commerce read model: shops, products, events, buy-together groups, installment plans.

Other capabilities read from here too: `get_product(q, id)` (a product with its shop, ready for
server.domain.cards.product_card), `get_products(q, ids)`, `get_shops_by_handles(q, handles)`
(for `$shopname` mentions), `get_groups(q, ids)`, `get_plans(q, ids)`, `get_events(q, ids)`.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from server.store.db import Queries, Row

# kind -> table. Kinds are the names the ingest API and the tombstones use.
TABLES = {
    "shop": "shops",
    "product": "products",
    "event": "commerce_events",
    "group": "buy_together_groups",
    "installment_plan": "installment_plans",
}

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


def _not_blocked(owner_column: str) -> str:
    """SQL: the row's owner and %(viewer)s have not blocked each other (NULL viewer: no filter)."""
    return f"""(%(viewer)s::uuid IS NULL OR NOT EXISTS (
        SELECT 1 FROM blocks b
        WHERE (b.blocker_id = {owner_column} AND b.blocked_id = %(viewer)s::uuid)
           OR (b.blocker_id = %(viewer)s::uuid AND b.blocked_id = {owner_column})))"""


_WORD_RE = re.compile(r"\w+", re.UNICODE)


def prefix_tsquery(text: str | None, max_terms: int = 8) -> str | None:
    """`"gaming lap"` -> `gaming:* & lap:*` (every word, as a prefix: search as you type).
    Only word characters survive, so the result is always a valid tsquery."""
    words = _WORD_RE.findall((text or "").lower())[:max_terms]
    if not words:
        return None
    return " & ".join(f"{word}:*" for word in words)


# Versions, locks and tombstones -----------------------------------------------------------


async def lock_entity(q: Queries, kind: str, entity_id: uuid.UUID) -> None:
    """Serialise every ingest of one entity (transaction-scoped advisory lock)."""
    await q.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended(%s, 5))", (f"commerce:{kind}:{entity_id}",)
    )


async def stored_version(q: Queries, kind: str, entity_id: uuid.UUID) -> datetime | None:
    return await q.fetchval(f"SELECT updated_at FROM {TABLES[kind]} WHERE id = %s", (entity_id,))


async def tombstone_version(q: Queries, kind: str, entity_id: uuid.UUID) -> datetime | None:
    return await q.fetchval(
        "SELECT version FROM commerce_tombstones WHERE kind = %s AND id = %s", (kind, entity_id)
    )


async def drop_tombstone(q: Queries, kind: str, entity_id: uuid.UUID) -> None:
    await q.execute(
        "DELETE FROM commerce_tombstones WHERE kind = %s AND id = %s", (kind, entity_id)
    )


async def put_tombstone(q: Queries, kind: str, entity_id: uuid.UUID, version: datetime) -> None:
    await q.execute(
        """INSERT INTO commerce_tombstones (kind, id, version) VALUES (%s, %s, %s)
           ON CONFLICT (kind, id) DO UPDATE
           SET version = greatest(commerce_tombstones.version, EXCLUDED.version),
               deleted_at = now()""",
        (kind, entity_id, version),
    )


async def prune_tombstones(q: Queries, older_than_days: int) -> int:
    return await q.execute(
        "DELETE FROM commerce_tombstones WHERE deleted_at < now() - make_interval(days => %s)",
        (older_than_days,),
    )


_TOMBSTONE_CHILDREN = """
    INSERT INTO commerce_tombstones (kind, id, version)
    SELECT kind, id, greatest(version, %(v)s) FROM doomed
    ON CONFLICT (kind, id) DO UPDATE
    SET version = greatest(commerce_tombstones.version, EXCLUDED.version), deleted_at = now()
"""


async def delete_entity(
    q: Queries, kind: str, entity_id: uuid.UUID, version: datetime
) -> list[uuid.UUID]:
    """Delete the row (its dependants cascade), leaving tombstones at `version` for it and for
    every cascaded product, group and plan. Returns the ids of the groups that went away."""
    if kind == "shop":
        doomed = """
            WITH prods AS (SELECT id, updated_at FROM products WHERE shop_id = %(id)s),
            doomed AS (
                SELECT 'product' AS kind, id, updated_at AS version FROM prods
                UNION ALL SELECT 'group', g.id, g.updated_at FROM buy_together_groups g
                    WHERE g.product_id IN (SELECT id FROM prods)
                UNION ALL SELECT 'installment_plan', i.id, i.updated_at FROM installment_plans i
                    WHERE i.product_id IN (SELECT id FROM prods)
            )"""
    elif kind == "product":
        doomed = """
            WITH doomed AS (
                SELECT 'group' AS kind, g.id, g.updated_at AS version FROM buy_together_groups g
                    WHERE g.product_id = %(id)s
                UNION ALL SELECT 'installment_plan', i.id, i.updated_at FROM installment_plans i
                    WHERE i.product_id = %(id)s
            )"""
    else:
        doomed = None
    groups: list[uuid.UUID] = []
    params = {"id": entity_id, "v": version}
    if doomed is not None:
        rows = await q.fetch(
            doomed + _TOMBSTONE_CHILDREN + " RETURNING kind, id",
            params,
        )
        groups = [row["id"] for row in rows if row["kind"] == "group"]
    elif kind == "group":
        groups = [entity_id]
    await put_tombstone(q, kind, entity_id, version)
    await q.execute(f"DELETE FROM {TABLES[kind]} WHERE id = %s", (entity_id,))
    return groups


async def existing_users(q: Queries, user_ids: Iterable[uuid.UUID]) -> set[uuid.UUID]:
    ids = list({u for u in user_ids if u is not None})
    if not ids:
        return set()
    rows = await q.fetch("SELECT id FROM users WHERE id = ANY(%s) AND is_active", (ids,))
    return {row["id"] for row in rows}


async def share_lock(q: Queries, kind: str, entity_id: uuid.UUID) -> Row | None:
    """The parent row, locked FOR KEY SHARE so it cannot vanish before this transaction ends."""
    columns = {"shop": "id, owner_id", "product": "id, owner_id, price, currency"}[kind]
    return await q.fetchrow(
        f"SELECT {columns} FROM {TABLES[kind]} WHERE id = %s FOR KEY SHARE", (entity_id,)
    )


# Upserts: `... ON CONFLICT (id) DO UPDATE ... WHERE stored.updated_at < EXCLUDED.updated_at`.
# They return the row (with `created`) when applied, None when the stored version is newer
# or equal.


def _upsert_sql(table: str, alias: str, columns: list[str]) -> str:
    names = ", ".join(["id", *columns, "updated_at"])
    values = ", ".join(f"%({c})s" for c in ["id", *columns, "updated_at"])
    sets = ", ".join(f"{c} = EXCLUDED.{c}" for c in [*columns, "updated_at"])
    return f"""INSERT INTO {table} AS {alias} ({names}) VALUES ({values})
        ON CONFLICT (id) DO UPDATE SET {sets}, ingested_at = now()
        WHERE {alias}.updated_at < EXCLUDED.updated_at
        RETURNING {alias}.id, (xmax = 0) AS created"""


_SHOP_FIELDS = ["handle", "name", "owner_id", "logo_url", "description", "is_verified"]
_PRODUCT_FIELDS = [
    "shop_id",
    "owner_id",
    "name",
    "description",
    "images",
    "price",
    "currency",
    "is_available",
]
_EVENT_FIELDS = [
    "organizer_id",
    "shop_id",
    "title",
    "description",
    "image_url",
    "starts_at",
    "ends_at",
    "timezone",
    "location_name",
    "location_address",
    "is_online",
    "ticket_status",
    "price_min",
    "price_max",
    "currency",
]
_PLAN_FIELDS = [
    "product_id",
    "duration_months",
    "monthly_amount",
    "total_cost",
    "interest_rate",
    "down_payment",
    "currency",
]
_GROUP_FIELDS = [
    "product_id",
    "creator_id",
    "target_price",
    "individual_price",
    "currency",
    "total_spots",
    "expires_at",
    "state",
]

_UPSERTS = {
    "shop": _upsert_sql("shops", "s", _SHOP_FIELDS),
    "product": _upsert_sql("products", "p", _PRODUCT_FIELDS),
    "event": _upsert_sql("commerce_events", "e", _EVENT_FIELDS),
    "installment_plan": _upsert_sql("installment_plans", "i", _PLAN_FIELDS),
    # A group's expiry needs announcing unless it is already past (the ingest announces it)
    # or the group is cancelled; an ingest that moves `expires_at` re-arms the timer.
    "group": f"""INSERT INTO buy_together_groups AS g
            (id, {", ".join(_GROUP_FIELDS)}, updated_at, expiry_announced)
        VALUES (%(id)s, {", ".join(f"%({c})s" for c in _GROUP_FIELDS)}, %(updated_at)s,
                %(state)s = 'cancelled' OR %(expires_at)s <= now())
        ON CONFLICT (id) DO UPDATE SET
            {", ".join(f"{c} = EXCLUDED.{c}" for c in _GROUP_FIELDS)},
            updated_at = EXCLUDED.updated_at, expiry_announced = EXCLUDED.expiry_announced,
            ingested_at = now()
        WHERE g.updated_at < EXCLUDED.updated_at
        RETURNING g.id, (xmax = 0) AS created""",
}
FIELDS = {
    "shop": _SHOP_FIELDS,
    "product": _PRODUCT_FIELDS,
    "event": _EVENT_FIELDS,
    "installment_plan": _PLAN_FIELDS,
    "group": _GROUP_FIELDS,
}


async def upsert(q: Queries, kind: str, values: dict[str, Any]) -> Row | None:
    params = {c: values.get(c) for c in ["id", *FIELDS[kind], "updated_at"]}
    return await q.fetchrow(_UPSERTS[kind], params)


# Buy-together participation ---------------------------------------------------------------


async def lock_group(q: Queries, group_id: uuid.UUID) -> Row | None:
    return await q.fetchrow(
        "SELECT id, state FROM buy_together_groups WHERE id = %s FOR UPDATE", (group_id,)
    )


async def set_participation(
    q: Queries,
    *,
    group_id: uuid.UUID,
    user_id: uuid.UUID,
    joined: bool,
    joined_at: datetime | None,
    version: datetime,
) -> Row | None:
    """Record a join or leave at `version`; None when a newer or equal one is stored.
    The returned row says whether the user was in the group before (`was_joined`)."""
    return await q.fetchrow(
        """WITH prev AS (
               SELECT joined FROM buy_together_participants
               WHERE group_id = %(g)s AND user_id = %(u)s)
           INSERT INTO buy_together_participants AS t
               (group_id, user_id, joined, joined_at, updated_at)
           VALUES (%(g)s, %(u)s, %(joined)s, CASE WHEN %(joined)s THEN %(at)s END, %(v)s)
           ON CONFLICT (group_id, user_id) DO UPDATE SET
               joined = EXCLUDED.joined,
               joined_at = CASE WHEN EXCLUDED.joined
                                THEN coalesce(t.joined_at, EXCLUDED.joined_at) END,
               updated_at = EXCLUDED.updated_at
           WHERE t.updated_at < EXCLUDED.updated_at
           RETURNING t.joined, coalesce((SELECT joined FROM prev), false) AS was_joined""",
        {"g": group_id, "u": user_id, "joined": joined, "at": joined_at or version, "v": version},
    )


async def participation_version(
    q: Queries, group_id: uuid.UUID, user_id: uuid.UUID
) -> datetime | None:
    return await q.fetchval(
        """SELECT updated_at FROM buy_together_participants
           WHERE group_id = %s AND user_id = %s""",
        (group_id, user_id),
    )


async def recount_participants(q: Queries, group_id: uuid.UUID) -> int:
    return await q.fetchval(
        """UPDATE buy_together_groups SET participant_count = (
               SELECT count(*) FROM buy_together_participants WHERE group_id = %(g)s AND joined)
           WHERE id = %(g)s RETURNING participant_count""",
        {"g": group_id},
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


async def live_group_ids_for_product(
    q: Queries, product_id: uuid.UUID, limit: int = 500
) -> list[uuid.UUID]:
    """Groups of a product whose cards are still live (not cancelled, deadline ahead)."""
    rows = await q.fetch(
        """SELECT id FROM buy_together_groups
           WHERE product_id = %s AND state = 'active' AND expires_at > now()
           ORDER BY id DESC LIMIT %s""",
        (product_id, limit),
    )
    return [row["id"] for row in rows]


# Group expiry -----------------------------------------------------------------------------


async def next_expiry(q: Queries) -> datetime | None:
    """The earliest deadline not yet announced (index buy_together_groups_expiry_idx)."""
    return await q.fetchval(
        "SELECT min(expires_at) FROM buy_together_groups WHERE NOT expiry_announced"
    )


async def claim_expired(q: Queries, limit: int = 500) -> list[uuid.UUID]:
    """Mark past deadlines announced and return those groups. Concurrent nodes never claim the
    same group twice (the row lock plus the re-checked WHERE)."""
    rows = await q.fetch(
        """UPDATE buy_together_groups SET expiry_announced = true
           WHERE id IN (SELECT id FROM buy_together_groups
                        WHERE NOT expiry_announced AND expires_at <= now()
                        ORDER BY expires_at LIMIT %s FOR UPDATE SKIP LOCKED)
           RETURNING id""",
        (limit,),
    )
    return [row["id"] for row in rows]


# Reads: shops -----------------------------------------------------------------------------


async def get_shop(q: Queries, shop_id: uuid.UUID, viewer: uuid.UUID | None = None) -> Row | None:
    return await q.fetchrow(
        f"""SELECT {SHOP_COLUMNS},
                   (SELECT count(*) FROM products p WHERE p.shop_id = s.id) AS products_count
            FROM shops s WHERE s.id = %(id)s AND {_not_blocked("s.owner_id")}""",
        {"id": shop_id, "viewer": viewer},
    )


async def get_shop_by_handle(
    q: Queries, handle: str, viewer: uuid.UUID | None = None
) -> Row | None:
    return await q.fetchrow(
        f"""SELECT {SHOP_COLUMNS},
                   (SELECT count(*) FROM products p WHERE p.shop_id = s.id) AS products_count
            FROM shops s WHERE s.handle = lower(%(handle)s) AND {_not_blocked("s.owner_id")}""",
        {"handle": handle, "viewer": viewer},
    )


async def get_shops_by_handles(
    q: Queries, handles: Iterable[str], viewer: uuid.UUID | None = None
) -> dict[str, Row]:
    """`$shopname` resolution: handle (lower case) -> shop, for the handles that exist."""
    wanted = sorted({h.lower().lstrip("$") for h in handles})
    if not wanted:
        return {}
    rows = await q.fetch(
        f"""SELECT {SHOP_COLUMNS} FROM shops s
            WHERE s.handle = ANY(%(handles)s) AND {_not_blocked("s.owner_id")}""",
        {"handles": wanted, "viewer": viewer},
    )
    return {row["handle"]: row for row in rows}


async def search_shops(
    q: Queries,
    *,
    query: str | None,
    viewer: uuid.UUID | None,
    limit: int,
    after: tuple[float, uuid.UUID] | uuid.UUID | None,
) -> list[Row]:
    return await _ranked_or_recent(
        q,
        select=f"SELECT {SHOP_COLUMNS}",
        source="shops s",
        alias="s",
        where=[_not_blocked("s.owner_id")],
        params={"viewer": viewer},
        query=query,
        limit=limit,
        after=after,
    )


# Reads: products --------------------------------------------------------------------------


async def get_product(
    q: Queries, product_id: uuid.UUID, viewer: uuid.UUID | None = None
) -> Row | None:
    """A product with its shop (`shop_name`, `shop_handle`, `shop_logo_url`), or None.
    With `viewer`, None also when the seller and the viewer have blocked each other."""
    return await q.fetchrow(
        f"""SELECT {PRODUCT_COLUMNS} FROM products p JOIN shops s ON s.id = p.shop_id
            WHERE p.id = %(id)s AND {_not_blocked("p.owner_id")}""",
        {"id": product_id, "viewer": viewer},
    )


async def get_products(
    q: Queries, product_ids: Iterable[uuid.UUID], viewer: uuid.UUID | None = None
) -> dict[uuid.UUID, Row]:
    ids = list(dict.fromkeys(product_ids))
    if not ids:
        return {}
    rows = await q.fetch(
        f"""SELECT {PRODUCT_COLUMNS} FROM products p JOIN shops s ON s.id = p.shop_id
            WHERE p.id = ANY(%(ids)s) AND {_not_blocked("p.owner_id")}""",
        {"ids": ids, "viewer": viewer},
    )
    return {row["id"]: row for row in rows}


async def search_products(
    q: Queries,
    *,
    query: str | None,
    viewer: uuid.UUID | None,
    limit: int,
    after: tuple[float, uuid.UUID] | uuid.UUID | None,
    shop_id: uuid.UUID | None = None,
) -> list[Row]:
    where = [_not_blocked("p.owner_id")]
    if shop_id is not None:
        where.append("p.shop_id = %(shop_id)s")
    return await _ranked_or_recent(
        q,
        select=f"SELECT {PRODUCT_COLUMNS}",
        source="products p JOIN shops s ON s.id = p.shop_id",
        alias="p",
        where=where,
        params={"viewer": viewer, "shop_id": shop_id},
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


async def get_event(q: Queries, event_id: uuid.UUID, viewer: uuid.UUID | None = None) -> Row | None:
    return await q.fetchrow(
        f"""SELECT {EVENT_COLUMNS} FROM commerce_events e
            WHERE e.id = %(id)s AND {_not_blocked("e.organizer_id")}""",
        {"id": event_id, "viewer": viewer},
    )


async def get_events(
    q: Queries, event_ids: Iterable[uuid.UUID], viewer: uuid.UUID | None = None
) -> dict[uuid.UUID, Row]:
    ids = list(dict.fromkeys(event_ids))
    if not ids:
        return {}
    rows = await q.fetch(
        f"""SELECT {EVENT_COLUMNS} FROM commerce_events e
            WHERE e.id = ANY(%(ids)s) AND {_not_blocked("e.organizer_id")}""",
        {"ids": ids, "viewer": viewer},
    )
    return {row["id"]: row for row in rows}


async def search_events(
    q: Queries,
    *,
    query: str | None,
    viewer: uuid.UUID | None,
    limit: int,
    after: Any,
    include_past: bool = False,
) -> list[Row]:
    """With a query: matches by (rank, id) descending. Without: soonest first by
    (starts_at, id). Unless `include_past`, only events that have not ended."""
    where = [_not_blocked("e.organizer_id")]
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
            params={"viewer": viewer},
            query=query,
            limit=limit,
            after=after,
        )
    params: dict[str, Any] = {"viewer": viewer, "limit": limit + 1}
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


async def get_group(q: Queries, group_id: uuid.UUID, viewer: uuid.UUID | None = None) -> Row | None:
    return await q.fetchrow(
        f"""SELECT {GROUP_COLUMNS} FROM {_GROUP_SOURCE}
            WHERE g.id = %(id)s AND {_not_blocked("g.creator_id")}""",
        {"id": group_id, "viewer": viewer},
    )


async def get_groups(
    q: Queries, group_ids: Iterable[uuid.UUID], viewer: uuid.UUID | None = None
) -> dict[uuid.UUID, Row]:
    ids = list(dict.fromkeys(group_ids))
    if not ids:
        return {}
    rows = await q.fetch(
        f"""SELECT {GROUP_COLUMNS} FROM {_GROUP_SOURCE}
            WHERE g.id = ANY(%(ids)s) AND {_not_blocked("g.creator_id")}""",
        {"ids": ids, "viewer": viewer},
    )
    return {row["id"]: row for row in rows}


async def list_user_groups(
    q: Queries, *, user_id: uuid.UUID, status: str, limit: int, after: uuid.UUID | None
) -> list[Row]:
    """Groups `user_id` created or has joined, newest first, filtered by derived status."""
    extra = " AND g.id < %(after)s" if after is not None else ""
    return await q.fetch(
        f"""SELECT {GROUP_COLUMNS} FROM {_GROUP_SOURCE}
            WHERE g.id IN (
                SELECT id FROM buy_together_groups WHERE creator_id = %(user)s
                UNION
                SELECT group_id FROM buy_together_participants WHERE user_id = %(user)s AND joined
            ) AND {GROUP_STATUS_SQL[status]}{extra}
            ORDER BY g.id DESC LIMIT %(limit)s""",
        {"user": user_id, "after": after, "limit": limit + 1},
    )


# Reads: installment plans -----------------------------------------------------------------

_PLAN_SOURCE = "installment_plans i JOIN products p ON p.id = i.product_id"


async def get_plan(q: Queries, plan_id: uuid.UUID, viewer: uuid.UUID | None = None) -> Row | None:
    return await q.fetchrow(
        f"""SELECT {PLAN_COLUMNS} FROM {_PLAN_SOURCE}
            WHERE i.id = %(id)s AND {_not_blocked("p.owner_id")}""",
        {"id": plan_id, "viewer": viewer},
    )


async def get_plans(
    q: Queries, plan_ids: Iterable[uuid.UUID], viewer: uuid.UUID | None = None
) -> dict[uuid.UUID, Row]:
    ids = list(dict.fromkeys(plan_ids))
    if not ids:
        return {}
    rows = await q.fetch(
        f"""SELECT {PLAN_COLUMNS} FROM {_PLAN_SOURCE}
            WHERE i.id = ANY(%(ids)s) AND {_not_blocked("p.owner_id")}""",
        {"ids": ids, "viewer": viewer},
    )
    return {row["id"]: row for row in rows}


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


# Demo data helpers ------------------------------------------------------------------------


async def count_rows(q: Queries) -> dict[str, int]:
    row = await q.fetchrow(
        """SELECT (SELECT count(*) FROM shops) AS shops,
                  (SELECT count(*) FROM products) AS products,
                  (SELECT count(*) FROM commerce_events) AS events,
                  (SELECT count(*) FROM buy_together_groups) AS groups,
                  (SELECT count(*) FROM installment_plans) AS installment_plans"""
    )
    return dict(row)
