"""Commerce ingest: the versioned, idempotent upserts and deletes the commerce services send,
and buy-together participation (joins and leaves).

Ingest is versioned by the payload's `updated_at`: an upsert older than (or as old as) what is
stored is ignored and reported as not applied, a delete leaves a tombstone so a late older
upsert cannot resurrect the entity, and every ingest of one entity is serialised. Each call is
one transaction: a payload that fails validation or names an unknown reference writes nothing.
Events go through the one event sink (`ctx.events`), staged in that transaction.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

from server.domain import cards, notifications
from server.domain.commerce.commands import (
    EventIn,
    GroupIn,
    Payload,
    PlanIn,
    ProductIn,
    ShopIn,
    UnknownReference,
)
from server.domain.commerce.live import GROUP_DELETED, publish_group, wake_expiry_timer
from server.domain.context import Context
from server.domain.notification_catalog import NotificationType
from server.errors import Conflict, ServiceUnavailable, ValidationFailed
from server.store.commerce import reads, writes
from server.store.db import (
    DeadlockDetected,
    Row,
    SerializationFailure,
    Transaction,
    UniqueViolation,
)
from server.store.visibility import SYSTEM

log = logging.getLogger(__name__)

T = TypeVar("T")


def _check_precision(values: dict[str, Any], currency: str, *fields: str) -> None:
    for name in fields:
        amount = values.get(name)
        if amount is not None and not cards.has_valid_precision(amount, currency):
            digits = cards.currency_exponent(currency)
            raise ValidationFailed.field(
                name, f"has more decimal places than {currency} allows ({digits})"
            )


def _check_path_id(entity_id: uuid.UUID, payload: Payload) -> None:
    if payload.id is not None and payload.id != entity_id:
        raise ValidationFailed.field("id", "does not match the id in the URL")


async def _in_tx(ctx: Context, work: Callable[[Transaction], Awaitable[T]]) -> T:
    """Run `work` in one transaction, retrying on a deadlock between concurrent ingests."""
    for attempt in range(3):
        try:
            async with ctx.db.transaction() as tx:
                return await work(tx)
        except (DeadlockDetected, SerializationFailure):
            log.warning("commerce ingest retried after a lock conflict", extra={"try": attempt})
    raise ServiceUnavailable("The commerce read model is busy; retry shortly.")


def _outcome(
    kind: str, entity_id: uuid.UUID, outcome: str, version: datetime | None, **extra: Any
) -> dict[str, Any]:
    applied = outcome in ("created", "updated", "deleted", "absent", "joined", "left", "unchanged")
    return {
        "kind": kind,
        "id": entity_id,
        "applied": applied,
        "outcome": outcome,
        "version": version,
        **extra,
    }


async def _not_applied(
    tx: Transaction, kind: str, entity_id: uuid.UUID, version: datetime
) -> dict[str, Any]:
    stored = await writes.stored_version(tx, kind, entity_id)
    outcome = "duplicate" if stored == version else "stale"
    return _outcome(kind, entity_id, outcome, stored)


async def _tombstoned(
    tx: Transaction, kind: str, entity_id: uuid.UUID, version: datetime
) -> dict[str, Any] | None:
    """The "deleted" outcome when a delete at least as new as `version` is recorded."""
    tomb = await writes.tombstone_version(tx, kind, entity_id)
    if tomb is not None and tomb >= version:
        return _outcome(kind, entity_id, "deleted_newer", tomb)
    return None


async def _require_users(tx: Transaction, **fields: uuid.UUID | None) -> None:
    found = await writes.existing_users(tx, fields.values())
    for name, user_id in fields.items():
        if user_id is not None and user_id not in found:
            raise UnknownReference.of(name, "user")


async def _apply(
    ctx: Context, tx: Transaction, kind: str, entity_id: uuid.UUID, values: dict[str, Any]
) -> dict[str, Any]:
    values = {**values, "id": entity_id}
    try:
        row = await writes.upsert(tx, kind, values)
    except UniqueViolation:
        if kind != "shop":
            raise
        raise Conflict(
            "handle: another shop already uses this handle.",
            errors={"handle": ["is used by another shop"]},
        ) from None
    if row is None:
        return await _not_applied(tx, kind, entity_id, values["updated_at"])
    await writes.drop_tombstone(tx, kind, entity_id)
    return _outcome(
        kind, entity_id, "created" if row["created"] else "updated", values["updated_at"]
    )


async def upsert_shop(ctx: Context, shop_id: uuid.UUID, payload: ShopIn) -> dict[str, Any]:
    _check_path_id(shop_id, payload)

    async def work(tx: Transaction) -> dict[str, Any]:
        await writes.lock_entity(tx, "shop", shop_id)
        if (done := await _tombstoned(tx, "shop", shop_id, payload.updated_at)) is not None:
            return done
        await _require_users(tx, owner_id=payload.owner_id)
        return await _apply(ctx, tx, "shop", shop_id, payload.model_dump(exclude={"id"}))

    return await _in_tx(ctx, work)


async def upsert_product(ctx: Context, product_id: uuid.UUID, payload: ProductIn) -> dict[str, Any]:
    _check_path_id(product_id, payload)
    values = payload.model_dump(exclude={"id"})
    _check_precision(values, payload.currency, "price")

    async def work(tx: Transaction) -> dict[str, Any]:
        await writes.lock_entity(tx, "product", product_id)
        shop = await writes.share_lock(tx, "shop", payload.shop_id)
        if (done := await _tombstoned(tx, "product", product_id, payload.updated_at)) is not None:
            return done
        if shop is None:
            raise UnknownReference.of("shop_id", "shop")
        values["owner_id"] = payload.owner_id or shop["owner_id"]
        await _require_users(tx, owner_id=payload.owner_id)
        result = await _apply(ctx, tx, "product", product_id, values)
        if result["outcome"] == "updated":
            # Group cards show the product's name, image and price: refresh the live ones.
            for group_id in await writes.live_group_ids_for_product(tx, product_id):
                await publish_group(ctx, tx, group_id)
        return result

    return await _in_tx(ctx, work)


async def upsert_event(ctx: Context, event_id: uuid.UUID, payload: EventIn) -> dict[str, Any]:
    _check_path_id(event_id, payload)
    values = payload.model_dump(exclude={"id"})
    if payload.ends_at is not None:
        if payload.ends_at < payload.starts_at:
            raise ValidationFailed.field("ends_at", "must not be before starts_at")
        if payload.ends_at - payload.starts_at > timedelta(days=reads.MAX_EVENT_DAYS):
            raise ValidationFailed.field(
                "ends_at", f"events may last at most {reads.MAX_EVENT_DAYS} days"
            )
    has_price = payload.price_min is not None or payload.price_max is not None
    if has_price and payload.currency is None:
        raise ValidationFailed.field("currency", "is required with a price range")
    if payload.price_min is not None and payload.price_max is not None:
        if payload.price_max < payload.price_min:
            raise ValidationFailed.field("price_max", "must not be below price_min")
    if payload.currency is not None:
        # One bound alone is a single price.
        values["price_min"] = (
            payload.price_min if payload.price_min is not None else payload.price_max
        )
        values["price_max"] = (
            payload.price_max if payload.price_max is not None else payload.price_min
        )
        _check_precision(values, payload.currency, "price_min", "price_max")

    async def work(tx: Transaction) -> dict[str, Any]:
        await writes.lock_entity(tx, "event", event_id)
        shop = await writes.share_lock(tx, "shop", payload.shop_id) if payload.shop_id else None
        if (done := await _tombstoned(tx, "event", event_id, payload.updated_at)) is not None:
            return done
        if payload.shop_id is not None and shop is None:
            raise UnknownReference.of("shop_id", "shop")
        await _require_users(tx, organizer_id=payload.organizer_id)
        return await _apply(ctx, tx, "event", event_id, values)

    return await _in_tx(ctx, work)


async def upsert_plan(ctx: Context, plan_id: uuid.UUID, payload: PlanIn) -> dict[str, Any]:
    _check_path_id(plan_id, payload)
    values = payload.model_dump(exclude={"id"})
    if payload.total_cost < payload.down_payment:
        raise ValidationFailed.field("total_cost", "must not be below down_payment")

    async def work(tx: Transaction) -> dict[str, Any]:
        await writes.lock_entity(tx, "installment_plan", plan_id)
        product = await writes.share_lock(tx, "product", payload.product_id)
        done = await _tombstoned(tx, "installment_plan", plan_id, payload.updated_at)
        if done is not None:
            return done
        if product is None:
            raise UnknownReference.of("product_id", "product")
        currency = _same_currency(payload.currency, product)
        values["currency"] = currency
        _check_precision(values, currency, "monthly_amount", "total_cost", "down_payment")
        return await _apply(ctx, tx, "installment_plan", plan_id, values)

    return await _in_tx(ctx, work)


def _same_currency(given: str | None, product: Row) -> str:
    currency = product["currency"]
    if given is not None and given != currency:
        raise ValidationFailed.field("currency", f"must match the product's currency ({currency})")
    return currency


async def upsert_group(ctx: Context, group_id: uuid.UUID, payload: GroupIn) -> dict[str, Any]:
    _check_path_id(group_id, payload)
    values = payload.model_dump(exclude={"id"})

    async def work(tx: Transaction) -> dict[str, Any]:
        await writes.lock_entity(tx, "group", group_id)
        product = await writes.share_lock(tx, "product", payload.product_id)
        if (done := await _tombstoned(tx, "group", group_id, payload.updated_at)) is not None:
            return done
        if product is None:
            raise UnknownReference.of("product_id", "product")
        currency = _same_currency(payload.currency, product)
        values["currency"] = currency
        if values["individual_price"] is None:
            values["individual_price"] = product["price"]
        _check_precision(values, currency, "target_price", "individual_price")
        if values["target_price"] > values["individual_price"]:
            raise ValidationFailed.field(
                "target_price", "must not exceed the individual price (it is the group discount)"
            )
        await _require_users(tx, creator_id=payload.creator_id)
        result = await _apply(ctx, tx, "group", group_id, values)
        if result["applied"]:
            await publish_group(ctx, tx, group_id)
            wake_expiry_timer(ctx, tx)
        return result

    return await _in_tx(ctx, work)


async def delete_entity(
    ctx: Context, kind: str, entity_id: uuid.UUID, version: datetime | None
) -> dict[str, Any]:
    """Idempotent delete at `version` (default: now). A stored row newer than the delete wins;
    deleting what is absent records the tombstone anyway (the create may still be in flight)."""
    version = version or ctx.clock.now()

    async def work(tx: Transaction) -> dict[str, Any]:
        await writes.lock_entity(tx, kind, entity_id)
        stored = await writes.stored_version(tx, kind, entity_id)
        if stored is not None and stored > version:
            return _outcome(kind, entity_id, "stale", stored)
        if stored is None:
            await writes.put_tombstone(tx, kind, entity_id, version)
            return _outcome(kind, entity_id, "absent", version)
        groups = await writes.delete_entity(tx, kind, entity_id, version)
        for group_id in groups:
            ctx.events.to_topic(
                tx, f"group:{group_id}", GROUP_DELETED, {"id": str(group_id), "deleted": True}
            )
        return _outcome(kind, entity_id, "deleted", version)

    return await _in_tx(ctx, work)


async def set_participation(
    ctx: Context,
    group_id: uuid.UUID,
    user_id: uuid.UUID,
    *,
    joined: bool,
    version: datetime | None,
    joined_at: datetime | None = None,
) -> dict[str, Any]:
    """A user joins (`joined`) or leaves a group. Idempotent and versioned per (group, user):
    a late older join cannot undo a newer leave."""
    version = version or ctx.clock.now()

    async def work(tx: Transaction) -> dict[str, Any]:
        await writes.lock_entity(tx, "group", group_id)
        group = await writes.lock_group(tx, group_id)
        if group is None:
            if (done := await _tombstoned(tx, "group", group_id, version)) is not None:
                return {**done, "kind": "participant"}
            if not joined:
                return _outcome("participant", group_id, "absent", version, user_id=user_id)
            raise UnknownReference.of("group_id", "buy-together group")
        if not await writes.existing_users(tx, [user_id]):
            if not joined:
                return _outcome("participant", group_id, "absent", version, user_id=user_id)
            raise UnknownReference.of("user_id", "user")
        row = await writes.set_participation(
            tx,
            group_id=group_id,
            user_id=user_id,
            joined=joined,
            joined_at=joined_at,
            version=version,
        )
        if row is None:
            stored = await writes.participation_version(tx, group_id, user_id)
            outcome = "duplicate" if stored == version else "stale"
            return _outcome("participant", group_id, outcome, stored, user_id=user_id)
        if row["was_joined"] == joined:
            outcome = "unchanged"
        else:
            outcome = "joined" if joined else "left"
            count = await writes.recount_participants(tx, group_id)
            card = await publish_group(ctx, tx, group_id)
            if joined:
                await _notify_joined(ctx, tx, group, user_id, count)
        if outcome == "unchanged":
            group_row = await reads.get_group(tx, group_id, SYSTEM)
            card = cards.group_card(group_row, ctx.clock.now()) if group_row is not None else None
        return _outcome("participant", group_id, outcome, version, user_id=user_id, group=card)

    return await _in_tx(ctx, work)


async def _notify_joined(
    ctx: Context, tx: Transaction, group: Any, user_id: uuid.UUID, count: int
) -> None:
    """GROUP_JOINED to the creator (batched: "@a, @b and 3 others joined your group"); when
    this join fills the group, GROUP_FULL to every participant."""
    await notifications.notify(
        ctx,
        tx,
        recipient_id=group["creator_id"],
        type=NotificationType.GROUP_JOINED,
        entity_type="group",
        entity_id=group["id"],
        actor_id=user_id,
        data={"group_id": str(group["id"])},
    )
    if count == group["total_spots"]:
        for member in await writes.joined_users(tx, group["id"]):
            await notifications.notify(
                ctx,
                tx,
                recipient_id=member,
                type=NotificationType.GROUP_FULL,
                entity_type="group",
                entity_id=group["id"],
                data={"group_id": str(group["id"])},
            )
