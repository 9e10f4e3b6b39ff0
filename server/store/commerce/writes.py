"""The commerce read model's write side: what ingest and the expiry timer change.

Versions, per-entity locks and tombstones (a delete is remembered against late, older
upserts), the versioned upserts, buy-together participation and the expiry claims. The reads
are in `server.store.commerce.reads`.
"""

from __future__ import annotations

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


async def existing_users(q: Queries, user_ids: Iterable[uuid.UUID | None]) -> set[uuid.UUID]:
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
        """SELECT id, state, creator_id, total_spots FROM buy_together_groups
           WHERE id = %s FOR UPDATE""",
        (group_id,),
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


async def joined_users(q: Queries, group_id: uuid.UUID) -> list[uuid.UUID]:
    rows = await q.fetch(
        """SELECT user_id FROM buy_together_participants WHERE group_id = %s AND joined
           ORDER BY joined_at, user_id""",
        (group_id,),
    )
    return [row["user_id"] for row in rows]


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
