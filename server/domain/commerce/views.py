"""Cards for other capabilities (posts, messaging): batch helpers, one query per kind.

Each takes the ids and the viewer (required): what the viewer may not see (its seller, shop
owner, organizer or group creator and the viewer blocked each other) is simply absent from
the result. A server-side render with no user looking passes `visibility.SYSTEM`.
"""

from __future__ import annotations

import uuid
from typing import Any

from server.domain import cards
from server.domain.context import Context
from server.store.commerce import reads as store
from server.store.visibility import Viewer


async def product_cards(
    ctx: Context, product_ids: list[uuid.UUID], viewer: Viewer
) -> dict[uuid.UUID, dict[str, Any]]:
    rows = await store.get_products(ctx.db, product_ids, viewer)
    return {pid: cards.product_card(row) for pid, row in rows.items()}


async def group_cards(
    ctx: Context, group_ids: list[uuid.UUID], viewer: Viewer
) -> dict[uuid.UUID, dict[str, Any]]:
    rows = await store.get_groups(ctx.db, group_ids, viewer)
    now = ctx.clock.now()
    return {gid: cards.group_card(row, now) for gid, row in rows.items()}


async def event_cards(
    ctx: Context, event_ids: list[uuid.UUID], viewer: Viewer
) -> dict[uuid.UUID, dict[str, Any]]:
    rows = await store.get_events(ctx.db, event_ids, viewer)
    now = ctx.clock.now()
    return {eid: cards.event_card(row, now) for eid, row in rows.items()}


async def plan_cards(
    ctx: Context, plan_ids: list[uuid.UUID], viewer: Viewer
) -> dict[uuid.UUID, dict[str, Any]]:
    rows = await store.get_plans(ctx.db, plan_ids, viewer)
    return {pid: cards.plan_card(row) for pid, row in rows.items()}
