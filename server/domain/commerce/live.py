"""Live buy-together groups: the `group:<id>` topic's events and the expiry announcements.

Every join, leave or service change of a group publishes `group.updated` with the fresh card;
a delete publishes `group.deleted`. Events are staged through the one event sink
(`ctx.events.to_topic`) in the transaction of the write, so nothing is published for a
rolled-back write. The cards are rendered for the topic, not for one user: a server read
(`visibility.SYSTEM`); the topic authorizer decides who may listen.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from server.domain import cards
from server.domain.context import Context
from server.store.commerce import reads, writes
from server.store.db import Transaction
from server.store.visibility import SYSTEM

GROUP_UPDATED = "group.updated"
GROUP_DELETED = "group.deleted"


async def publish_group(
    ctx: Context, tx: Transaction, group_id: uuid.UUID
) -> dict[str, Any] | None:
    """`group.updated` with the card as committed, on topic `group:<id>`; returns the card."""
    row = await reads.get_group(tx, group_id, SYSTEM)
    if row is None:
        return None
    card = cards.group_card(row, ctx.clock.now())
    ctx.events.to_topic(tx, f"group:{group_id}", GROUP_UPDATED, card)
    return card


def wake_expiry_timer(ctx: Context, tx: Transaction) -> None:
    """After commit, have this node's expiry timer re-read the earliest deadline."""
    timer = ctx.group_expiry
    if timer is not None:

        async def wake() -> None:
            timer.wake()

        tx.after_commit(wake)


async def announce_expired_groups(ctx: Context) -> list[uuid.UUID]:
    """Claim every group whose deadline passed unannounced and publish its card (now
    "expired", or still "full" / "cancelled" for those that are). Returns the claimed ids."""
    async with ctx.db.transaction() as tx:
        claimed = await writes.claim_expired(tx)
        for group_id in claimed:
            await publish_group(ctx, tx, group_id)
    return claimed


async def next_group_expiry(ctx: Context) -> datetime | None:
    return await writes.next_expiry(ctx.db)


async def prune_tombstones(ctx: Context, older_than_days: int) -> int:
    """Forget deletes older than this (late upserts that old are not expected any more)."""
    return await writes.prune_tombstones(ctx.db, older_than_days)
