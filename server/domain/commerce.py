"""Commerce: the read model the commerce services feed (ingest actions) and the look-ups and
cards the post-creation flows and post display read.

Ingest is versioned by the payload's `updated_at`: an upsert older than (or as old as) what is
stored is ignored and reported as not applied, a delete leaves a tombstone so a late older
upsert cannot resurrect the entity, and every ingest of one entity is serialised. Each call is
one transaction: a payload that fails validation or names an unknown reference writes nothing.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any, Literal, TypeVar
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import psycopg2.errors
from pydantic import AfterValidator, AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field

from server.domain import cards
from server.domain.auth_tokens import Principal
from server.domain.context import Context
from server.errors import (
    Conflict,
    Forbidden,
    NotFound,
    ServiceUnavailable,
    ValidationFailed,
)
from server.pagination import decode_cursor, decode_id_cursor, page
from server.store import commerce as store
from server.store.db import Row, Transaction, UniqueViolation

log = logging.getLogger(__name__)

T = TypeVar("T")

EXPIRY_TIMER_KEY = "commerce.expiry_timer"
GROUP_UPDATED = "group.updated"
GROUP_DELETED = "group.deleted"
MAX_COMPARE_PLANS = 6


class UnknownReference(ValidationFailed):
    """A payload names a shop, product, group or user this server has not (yet) ingested.
    Distinct problem type so a commerce queue can retry once the parent has been sent."""

    code = "unknown_reference"
    title = "Unknown reference"

    @classmethod
    def of(cls, field: str, what: str) -> UnknownReference:
        return cls(f"{field}: no {what} with this id", errors={field: [f"no {what} with this id"]})


# Ingest payloads ---------------------------------------------------------------------------


def _check_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or any(c.isspace() for c in value):
        raise ValueError("must be an http(s) URL")
    return value


def _check_currency(value: Any) -> Any:
    if isinstance(value, str):
        value = value.strip().upper()
        if value not in cards.CURRENCIES:
            raise ValueError("must be an ISO 4217 currency code such as USD")
    return value


def _check_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError("must be an IANA time zone such as Europe/Paris") from None
    return value


def _check_handle(value: Any) -> Any:
    if isinstance(value, str):
        value = value.strip().lstrip("$").lower()
        if not re.fullmatch(r"[a-z0-9_]{2,40}", value):
            raise ValueError("must be 2-40 characters of a-z, 0-9 and _")
    return value


EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)


def _check_moment(value: datetime) -> datetime:
    """PostgreSQL stores years Python cannot read back (and cards shift times by zone offsets):
    one such payload would break every list showing it, so refuse it at the edge."""
    if not EARLIEST <= value < LATEST:
        raise ValueError("must be between 1970 and 9000")
    return value


Moment = Annotated[AwareDatetime, AfterValidator(_check_moment)]
Url = Annotated[str, Field(max_length=2048), AfterValidator(_check_url)]
Amount = Annotated[Decimal, Field(ge=0, max_digits=19, decimal_places=4, allow_inf_nan=False)]
Currency = Annotated[str, BeforeValidator(_check_currency)]
Name = Annotated[str, Field(min_length=1, max_length=200)]
Text = Annotated[str, Field(max_length=5000)]


class _Payload(BaseModel):
    # Unknown fields are ignored so the commerce services can add fields before we read them.
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    id: uuid.UUID | None = Field(None, description="Optional; must equal the id in the URL")
    updated_at: Moment = Field(
        description="The entity's version at the commerce service (ISO 8601 with offset)"
    )


class ShopIn(_Payload):
    handle: Annotated[str, BeforeValidator(_check_handle)] = Field(
        description="Unique; what `$handle` mentions resolve"
    )
    name: Name
    owner_id: uuid.UUID
    logo_url: Url | None = None
    description: Text | None = None
    is_verified: bool = False


class ProductIn(_Payload):
    shop_id: uuid.UUID
    owner_id: uuid.UUID | None = Field(None, description="The seller; defaults to the shop owner")
    name: Name
    description: Text | None = None
    images: list[Url] = Field(default_factory=list, max_length=20)
    price: Amount = Field(description='Decimal string (preferred) or number, e.g. "1200.00"')
    currency: Currency
    is_available: bool = True


TicketStatus = Literal["available", "limited", "sold_out", "not_on_sale", "cancelled"]


class EventIn(_Payload):
    title: Name
    description: Text | None = None
    image_url: Url | None = None
    starts_at: Moment
    ends_at: Moment | None = None
    timezone: Annotated[str, Field(max_length=64), AfterValidator(_check_zone)] = "UTC"
    location_name: Annotated[str, Field(max_length=200)] | None = None
    location_address: Annotated[str, Field(max_length=500)] | None = None
    is_online: bool = False
    ticket_status: TicketStatus = "available"
    price_min: Amount | None = None
    price_max: Amount | None = None
    currency: Currency | None = None
    organizer_id: uuid.UUID | None = None
    shop_id: uuid.UUID | None = None


class GroupIn(_Payload):
    product_id: uuid.UUID
    creator_id: uuid.UUID
    target_price: Amount = Field(description="Price per participant once the group is full")
    individual_price: Amount | None = Field(
        None, description="Price bought alone; defaults to the product's price"
    )
    currency: Currency | None = Field(None, description="Defaults to the product's currency")
    total_spots: int = Field(ge=2, le=10_000)
    expires_at: Moment
    state: Literal["active", "cancelled"] = "active"


class PlanIn(_Payload):
    product_id: uuid.UUID
    duration_months: int = Field(ge=1, le=120)
    monthly_amount: Amount
    total_cost: Amount
    interest_rate: Decimal = Field(
        Decimal(0), ge=0, le=100, max_digits=7, decimal_places=4, allow_inf_nan=False
    )
    down_payment: Amount = Decimal(0)
    currency: Currency | None = Field(None, description="Defaults to the product's currency")


class ParticipantIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    updated_at: Moment = Field(description="Version of this membership change")
    joined_at: Moment | None = None


def _check_precision(values: dict[str, Any], currency: str, *fields: str) -> None:
    for name in fields:
        amount = values.get(name)
        if amount is not None and not cards.has_valid_precision(amount, currency):
            digits = cards.currency_exponent(currency)
            raise ValidationFailed.field(
                name, f"has more decimal places than {currency} allows ({digits})"
            )


def _check_path_id(entity_id: uuid.UUID, payload: _Payload) -> None:
    if payload.id is not None and payload.id != entity_id:
        raise ValidationFailed.field("id", "does not match the id in the URL")


# Ingest machinery --------------------------------------------------------------------------


async def _in_tx(ctx: Context, work: Callable[[Transaction], Awaitable[T]]) -> T:
    """Run `work` in one transaction, retrying on a deadlock between concurrent ingests."""
    for attempt in range(3):
        try:
            async with ctx.db.transaction() as tx:
                return await work(tx)
        except (psycopg2.errors.DeadlockDetected, psycopg2.errors.SerializationFailure):
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
    stored = await store.stored_version(tx, kind, entity_id)
    outcome = "duplicate" if stored == version else "stale"
    return _outcome(kind, entity_id, outcome, stored)


async def _tombstoned(
    tx: Transaction, kind: str, entity_id: uuid.UUID, version: datetime
) -> dict[str, Any] | None:
    """The "deleted" outcome when a delete at least as new as `version` is recorded."""
    tomb = await store.tombstone_version(tx, kind, entity_id)
    if tomb is not None and tomb >= version:
        return _outcome(kind, entity_id, "deleted_newer", tomb)
    return None


async def _require_users(tx: Transaction, **fields: uuid.UUID | None) -> None:
    found = await store.existing_users(tx, fields.values())
    for name, user_id in fields.items():
        if user_id is not None and user_id not in found:
            raise UnknownReference.of(name, "user")


async def _apply(
    ctx: Context, tx: Transaction, kind: str, entity_id: uuid.UUID, values: dict[str, Any]
) -> dict[str, Any]:
    values = {**values, "id": entity_id}
    try:
        row = await store.upsert(tx, kind, values)
    except UniqueViolation:
        if kind != "shop":
            raise
        raise Conflict(
            "handle: another shop already uses this handle.",
            errors={"handle": ["is used by another shop"]},
        ) from None
    if row is None:
        return await _not_applied(tx, kind, entity_id, values["updated_at"])
    await store.drop_tombstone(tx, kind, entity_id)
    return _outcome(
        kind, entity_id, "created" if row["created"] else "updated", values["updated_at"]
    )


async def upsert_shop(ctx: Context, shop_id: uuid.UUID, payload: ShopIn) -> dict[str, Any]:
    _check_path_id(shop_id, payload)

    async def work(tx: Transaction) -> dict[str, Any]:
        await store.lock_entity(tx, "shop", shop_id)
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
        await store.lock_entity(tx, "product", product_id)
        shop = await store.share_lock(tx, "shop", payload.shop_id)
        if (done := await _tombstoned(tx, "product", product_id, payload.updated_at)) is not None:
            return done
        if shop is None:
            raise UnknownReference.of("shop_id", "shop")
        values["owner_id"] = payload.owner_id or shop["owner_id"]
        await _require_users(tx, owner_id=payload.owner_id)
        result = await _apply(ctx, tx, "product", product_id, values)
        if result["outcome"] == "updated":
            # Group cards show the product's name, image and price: refresh the live ones.
            for group_id in await store.live_group_ids_for_product(tx, product_id):
                await _publish_group(ctx, tx, group_id)
        return result

    return await _in_tx(ctx, work)


async def upsert_event(ctx: Context, event_id: uuid.UUID, payload: EventIn) -> dict[str, Any]:
    _check_path_id(event_id, payload)
    values = payload.model_dump(exclude={"id"})
    if payload.ends_at is not None:
        if payload.ends_at < payload.starts_at:
            raise ValidationFailed.field("ends_at", "must not be before starts_at")
        if payload.ends_at - payload.starts_at > timedelta(days=store.MAX_EVENT_DAYS):
            raise ValidationFailed.field(
                "ends_at", f"events may last at most {store.MAX_EVENT_DAYS} days"
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
        await store.lock_entity(tx, "event", event_id)
        shop = await store.share_lock(tx, "shop", payload.shop_id) if payload.shop_id else None
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
        await store.lock_entity(tx, "installment_plan", plan_id)
        product = await store.share_lock(tx, "product", payload.product_id)
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
        await store.lock_entity(tx, "group", group_id)
        product = await store.share_lock(tx, "product", payload.product_id)
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
            await _publish_group(ctx, tx, group_id)
            _wake_expiry_timer(ctx, tx)
        return result

    return await _in_tx(ctx, work)


async def delete_entity(
    ctx: Context, kind: str, entity_id: uuid.UUID, version: datetime | None
) -> dict[str, Any]:
    """Idempotent delete at `version` (default: now). A stored row newer than the delete wins;
    deleting what is absent records the tombstone anyway (the create may still be in flight)."""
    version = version or ctx.clock.now()

    async def work(tx: Transaction) -> dict[str, Any]:
        await store.lock_entity(tx, kind, entity_id)
        stored = await store.stored_version(tx, kind, entity_id)
        if stored is not None and stored > version:
            return _outcome(kind, entity_id, "stale", stored)
        if stored is None:
            await store.put_tombstone(tx, kind, entity_id, version)
            return _outcome(kind, entity_id, "absent", version)
        groups = await store.delete_entity(tx, kind, entity_id, version)
        for group_id in groups:
            ctx.emit_topic_after_commit(
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
        await store.lock_entity(tx, "group", group_id)
        group = await store.lock_group(tx, group_id)
        if group is None:
            if (done := await _tombstoned(tx, "group", group_id, version)) is not None:
                return {**done, "kind": "participant"}
            if not joined:
                return _outcome("participant", group_id, "absent", version, user_id=user_id)
            raise UnknownReference.of("group_id", "buy-together group")
        if not await store.existing_users(tx, [user_id]):
            if not joined:
                return _outcome("participant", group_id, "absent", version, user_id=user_id)
            raise UnknownReference.of("user_id", "user")
        row = await store.set_participation(
            tx,
            group_id=group_id,
            user_id=user_id,
            joined=joined,
            joined_at=joined_at,
            version=version,
        )
        if row is None:
            stored = await store.participation_version(tx, group_id, user_id)
            outcome = "duplicate" if stored == version else "stale"
            return _outcome("participant", group_id, outcome, stored, user_id=user_id)
        if row["was_joined"] == joined:
            outcome = "unchanged"
        else:
            outcome = "joined" if joined else "left"
            await store.recount_participants(tx, group_id)
            await _publish_group(ctx, tx, group_id)
        card = cards.group_card(await store.get_group(tx, group_id), ctx.clock.now())
        return _outcome("participant", group_id, outcome, version, user_id=user_id, group=card)

    return await _in_tx(ctx, work)


async def _publish_group(ctx: Context, tx: Transaction, group_id: uuid.UUID) -> None:
    """After commit, `group.updated` with the fresh card on topic `group:<id>`. The card is
    rendered at publish time so its status and time remaining are current."""

    async def publish() -> None:
        row = await store.get_group(ctx.db, group_id)
        if row is not None:
            await ctx.bus.publish_topic(
                f"group:{group_id}", GROUP_UPDATED, cards.group_card(row, ctx.clock.now())
            )

    tx.after_commit(publish)


def _wake_expiry_timer(ctx: Context, tx: Transaction) -> None:
    timer = ctx.extras.get(EXPIRY_TIMER_KEY)
    if timer is not None:

        async def wake() -> None:
            timer.wake()

        tx.after_commit(wake)


async def announce_expired_groups(ctx: Context) -> list[uuid.UUID]:
    """Claim every group whose deadline passed unannounced and publish its card (now
    "expired", or still "full" / "cancelled" for those that are). Returns the claimed ids."""
    async with ctx.db.transaction() as tx:
        claimed = await store.claim_expired(tx)
        for group_id in claimed:
            await _publish_group(ctx, tx, group_id)
    return claimed


async def next_group_expiry(ctx: Context) -> datetime | None:
    return await store.next_expiry(ctx.db)


# Look-ups ---------------------------------------------------------------------------------


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
        ctx.db, user_id=user_id, status=status, limit=limit, after=decode_id_cursor(cursor)
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
    row = await store.get_product(ctx.db, product_id, viewer.user_id)
    if row is None:
        raise NotFound("No such product.")
    return _view(row, cards.product_card(row))


async def get_shop_view(ctx: Context, viewer: Principal, ref: str) -> dict[str, Any]:
    """A shop by id or by handle (`handle` or `$handle`)."""
    shop_id = _as_uuid(ref)
    if shop_id is not None:
        row = await store.get_shop(ctx.db, shop_id, viewer.user_id)
    else:
        row = await store.get_shop_by_handle(ctx.db, ref.lstrip("$"), viewer.user_id)
    if row is None:
        raise NotFound("No such shop.")
    return _view(row, cards.shop_card(row))


async def get_event_view(ctx: Context, viewer: Principal, event_id: uuid.UUID) -> dict:
    row = await store.get_event(ctx.db, event_id, viewer.user_id)
    if row is None:
        raise NotFound("No such event.")
    return _view(row, cards.event_card(row, ctx.clock.now()))


async def get_group_view(ctx: Context, viewer: Principal, group_id: uuid.UUID) -> dict:
    row = await store.get_group(ctx.db, group_id, viewer.user_id)
    if row is None:
        raise NotFound("No such buy-together group.")
    joined = group_id in await store.has_joined(ctx.db, [group_id], viewer.user_id)
    view = _view(row, cards.group_card(row, ctx.clock.now(), viewer_joined=joined))
    view["status"] = view["card"]["status"]
    return view


async def get_plan_view(ctx: Context, viewer: Principal, plan_id: uuid.UUID) -> dict:
    row = await store.get_plan(ctx.db, plan_id, viewer.user_id)
    if row is None:
        raise NotFound("No such installment plan.")
    return _view(row, cards.plan_card(row))


async def list_product_plans(
    ctx: Context, viewer: Principal, product_id: uuid.UUID, *, limit: int, cursor: str | None
) -> dict[str, Any]:
    product = await store.get_product(ctx.db, product_id, viewer.user_id)
    if product is None:
        raise NotFound("No such product.")
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
    product = await store.get_product(ctx.db, product_id, viewer.user_id)
    if product is None:
        raise NotFound("No such product.")
    plans = await store.get_plans(ctx.db, plan_ids)
    for plan_id in plan_ids:
        plan = plans.get(plan_id)
        if plan is None or plan["product_id"] != product_id:
            raise ValidationFailed.field("plans", f"{plan_id} is not a plan of this product")
    return cards.plan_comparison(product, [plans[i] for i in plan_ids])


def _as_uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


# Cards for other capabilities (posts, messaging) ------------------------------------------


async def product_cards(
    ctx: Context, product_ids: list[uuid.UUID], viewer: uuid.UUID | None = None
) -> dict[uuid.UUID, dict[str, Any]]:
    rows = await store.get_products(ctx.db, product_ids, viewer)
    return {pid: cards.product_card(row) for pid, row in rows.items()}


async def group_cards(
    ctx: Context, group_ids: list[uuid.UUID], viewer: uuid.UUID | None = None
) -> dict[uuid.UUID, dict[str, Any]]:
    rows = await store.get_groups(ctx.db, group_ids, viewer)
    now = ctx.clock.now()
    return {gid: cards.group_card(row, now) for gid, row in rows.items()}


async def event_cards(
    ctx: Context, event_ids: list[uuid.UUID], viewer: uuid.UUID | None = None
) -> dict[uuid.UUID, dict[str, Any]]:
    rows = await store.get_events(ctx.db, event_ids, viewer)
    now = ctx.clock.now()
    return {eid: cards.event_card(row, now) for eid, row in rows.items()}


async def plan_cards(
    ctx: Context, plan_ids: list[uuid.UUID], viewer: uuid.UUID | None = None
) -> dict[uuid.UUID, dict[str, Any]]:
    rows = await store.get_plans(ctx.db, plan_ids, viewer)
    return {pid: cards.plan_card(row) for pid, row in rows.items()}


async def can_view_group(ctx: Context, principal: Principal, group_id: uuid.UUID) -> bool:
    """Topic authorizer for `subscribe group:<id>`: the same rule as the HTTP read (the group
    exists and its creator and the viewer have not blocked each other)."""
    return await store.get_group(ctx.db, group_id, principal.user_id) is not None
