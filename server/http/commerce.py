"""HTTP routes of the commerce capability.

- `/api/internal/commerce/...`: the ingest API the commerce services call (shops, products,
  events, buy-together groups and their participants, installment plans). Authenticated by the
  service token (`X-Service-Token`, config `commerce.service_token`), never by a user token.
- The look-ups the post-creation flows call and the entity reads, each with its card.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Literal

from aiohttp import web
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from server.app_keys import CONTEXT, PRINCIPAL
from server.domain import commerce
from server.domain.group_expiry import GroupExpiryTimer
from server.errors import Forbidden, ServiceUnavailable, Unauthorized, ValidationFailed
from server.http.endpoint import context, endpoint, path_id, principal
from server.ids import parse_uuid
from server.pagination import PageQuery

routes = web.RouteTableDef()
TAGS = ("commerce",)
INGEST_TAGS = ("commerce-ingest",)
SERVICE_TOKEN_HEADER = "X-Service-Token"


# Response models (documentation of the cards; the cards themselves come from domain.cards) --


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class Money(BaseModel):
    amount: str = Field(description="Decimal string with the currency's number of decimals")
    currency: str
    minor_units: int
    formatted: str


class Cta(_Open):
    label: str
    link: str


class ShopRef(_Open):
    id: uuid.UUID
    handle: str | None
    name: str | None
    logo_url: str | None
    link: str | None


class ProductRef(_Open):
    id: uuid.UUID
    name: str | None
    image_url: str | None
    price: Money | None
    link: str


class ProductCard(_Open):
    kind: Literal["product"]
    id: uuid.UUID
    name: str
    image_url: str | None
    images: list[str]
    price: Money
    is_available: bool
    shop: ShopRef | None
    owner_id: uuid.UUID | None
    link: str
    cta: Cta


class ShopCard(_Open):
    kind: Literal["shop"]
    id: uuid.UUID
    handle: str
    mention: str
    name: str
    logo_url: str | None
    description: str | None
    is_verified: bool
    owner_id: uuid.UUID
    link: str
    cta: Cta


class PriceRange(BaseModel):
    min: Money
    max: Money
    is_free: bool
    label: str


class EventLocation(BaseModel):
    name: str | None
    address: str | None
    is_online: bool
    label: str | None


class EventCard(_Open):
    kind: Literal["event"]
    id: uuid.UUID
    title: str
    image_url: str | None
    starts_at: datetime
    ends_at: datetime | None
    timezone: str
    local_starts_at: str
    date_label: str
    location: EventLocation
    phase: Literal["upcoming", "live", "ended", "cancelled"]
    ticket_status: str
    tickets_available: bool
    ticket_label: str
    price_range: PriceRange | None
    link: str
    cta: Cta


GroupStatus = Literal["open", "almost_full", "full", "expired", "cancelled"]


class GroupCta(_Open):
    label: str
    enabled: bool
    link: str


class GroupCard(_Open):
    kind: Literal["buy_together_group"]
    id: uuid.UUID
    label: str
    product: ProductRef
    creator_id: uuid.UUID
    target_price: Money
    individual_price: Money
    savings: Money
    savings_percent: int
    price_label: str
    participants: int
    total_spots: int
    spots_left: int
    progress: float
    progress_label: str
    expires_at: datetime
    seconds_remaining: int
    time_remaining_label: str | None
    status: GroupStatus
    status_label: str
    spots_left_label: str | None
    join_enabled: bool
    grayed_out: bool
    cta: GroupCta
    link: str
    as_of: datetime
    viewer_joined: bool | None = None


class PlanCard(_Open):
    kind: Literal["installment_plan"]
    id: uuid.UUID
    badge: str
    product: ProductRef
    duration_months: int
    duration_label: str
    monthly_amount: Money
    monthly_label: str
    total_cost: Money
    total_label: str
    total_differs_from_price: bool
    cost_of_credit: Money | None
    interest_rate: str
    interest_label: str
    down_payment: Money | None
    down_payment_label: str | None
    link: str = Field(description="Deep link /products/<id>?plan=<planId>")
    cta: Cta


class PlanComparison(BaseModel):
    kind: Literal["installment_plan_comparison"]
    product: ProductCard
    plans: list[PlanCard]
    lowest_monthly_plan_id: uuid.UUID | None
    lowest_total_plan_id: uuid.UUID | None


class ProductOut(_Open):
    id: uuid.UUID
    shop_id: uuid.UUID
    owner_id: uuid.UUID
    name: str
    description: str | None
    updated_at: datetime
    card: ProductCard


class ShopOut(_Open):
    id: uuid.UUID
    handle: str
    name: str
    owner_id: uuid.UUID
    products_count: int
    updated_at: datetime
    card: ShopCard


class EventOut(_Open):
    id: uuid.UUID
    title: str
    description: str | None
    starts_at: datetime
    updated_at: datetime
    card: EventCard


class GroupOut(_Open):
    id: uuid.UUID
    product_id: uuid.UUID
    creator_id: uuid.UUID
    total_spots: int
    participant_count: int
    expires_at: datetime
    status: GroupStatus
    updated_at: datetime
    card: GroupCard


class PlanOut(_Open):
    id: uuid.UUID
    product_id: uuid.UUID
    duration_months: int
    updated_at: datetime
    card: PlanCard


class ProductPage(BaseModel):
    items: list[ProductCard]
    next_cursor: str | None


class ShopPage(BaseModel):
    items: list[ShopCard]
    next_cursor: str | None


class EventPage(BaseModel):
    items: list[EventCard]
    next_cursor: str | None


class GroupPage(BaseModel):
    items: list[GroupCard]
    next_cursor: str | None


class PlanPage(BaseModel):
    product: ProductCard
    items: list[PlanCard]
    next_cursor: str | None


class IngestResult(_Open):
    kind: str
    id: uuid.UUID
    applied: bool = Field(
        description="False when the payload was stale, a duplicate, or older than a recorded delete"
    )
    outcome: Literal[
        "created",
        "updated",
        "deleted",
        "absent",
        "joined",
        "left",
        "unchanged",
        "stale",
        "duplicate",
        "deleted_newer",
    ]
    version: datetime | None = Field(description="The version now stored (or the tombstone's)")
    user_id: uuid.UUID | None = None
    group: GroupCard | None = None


# Query models -----------------------------------------------------------------------------


class SearchQuery(PageQuery):
    q: str | None = Field(None, max_length=200, description="Words; each matches as a prefix")


class ProductSearchQuery(SearchQuery):
    shop_id: uuid.UUID | None = Field(None, description="Only this shop's products")


class EventSearchQuery(SearchQuery):
    include_past: bool = Field(False, description="Also events that have ended")


class GroupListQuery(PageQuery):
    status: commerce.GroupStatusFilter = Field(
        "active", description="active = open or almost full (joinable); any = every status"
    )
    user: uuid.UUID | None = Field(
        None, description="Whose groups (created or joined); only your own. Default: you"
    )


class CompareQuery(BaseModel):
    plans: str = Field(max_length=300, description="Comma-separated plan ids (1 to 6)")


def _plus_from_query(value: object) -> object:
    """`?updated_at=...T10:00:00+02:00` sent unencoded arrives with a space for the `+`."""
    if isinstance(value, str) and " " in value.strip():
        return value.strip().replace(" ", "+")
    return value


class DeleteQuery(BaseModel):
    updated_at: Annotated[commerce.Moment | None, BeforeValidator(_plus_from_query)] = Field(
        None, description="Version of the delete (default: now); an older delete is ignored"
    )


# Service-token authentication -------------------------------------------------------------


def _digest(value: str) -> bytes:
    return hashlib.sha256(value.encode()).digest()


def require_service(request: web.Request) -> None:
    """The caller must be a commerce service: the configured token in `X-Service-Token`,
    compared in constant time. A user's token is refused with 403, whatever else is sent."""
    if request.get(PRINCIPAL) is not None:
        raise Forbidden(
            "The commerce ingest API is for the commerce services: present the service token "
            f"in {SERVICE_TOKEN_HEADER}, not a user token."
        )
    settings = request.app[CONTEXT].settings
    configured = [t.strip() for t in settings.commerce.service_token.split(",") if t.strip()]
    if not configured:
        raise ServiceUnavailable(
            "Commerce ingest is disabled: no commerce.service_token is configured "
            "(NEXGATE_COMMERCE_SERVICE_TOKEN)."
        )
    presented = request.headers.get(SERVICE_TOKEN_HEADER, "")
    if not presented:
        raise Unauthorized(
            f"Present the commerce service token in the {SERVICE_TOKEN_HEADER} header."
        )
    given = _digest(presented)
    ok = False
    for token in configured:  # every candidate, so timing does not say which one matched
        ok |= hmac.compare_digest(given, _digest(token))
    if not ok:
        raise Unauthorized("The commerce service token is not valid.")


def service_only(handler):
    """Check the service token before the body is read; document the scheme in OpenAPI."""

    @functools.wraps(handler)
    async def wrapped(request: web.Request) -> web.StreamResponse:
        require_service(request)
        return await handler(request)

    wrapped.__endpoint__.extra["security"] = [{"serviceToken": []}]  # type: ignore[attr-defined]
    return wrapped


def _ingest(
    summary: str, body: type[BaseModel] | None = None, query: type[BaseModel] | None = None
):
    return endpoint(
        summary,
        body=body,
        query=query,
        response=IngestResult,
        public=True,  # not a user route: require_service authenticates it
        tags=INGEST_TAGS,
        errors=(401, 403, 409, 422, 503),
    )


# Ingest -----------------------------------------------------------------------------------

_DELETE_KINDS = {
    "shops": "shop",
    "products": "product",
    "events": "event",
    "groups": "group",
    "installment-plans": "installment_plan",
}


@routes.put("/api/internal/commerce/shops/{id}")
@service_only
@_ingest("Upsert a shop (idempotent; older `updated_at` ignored)", body=commerce.ShopIn)
async def ingest_shop(request: web.Request, body: commerce.ShopIn) -> dict:
    return await commerce.upsert_shop(context(request), path_id(request), body)


@routes.put("/api/internal/commerce/products/{id}")
@service_only
@_ingest("Upsert a product (idempotent; older `updated_at` ignored)", body=commerce.ProductIn)
async def ingest_product(request: web.Request, body: commerce.ProductIn) -> dict:
    return await commerce.upsert_product(context(request), path_id(request), body)


@routes.put("/api/internal/commerce/events/{id}")
@service_only
@_ingest("Upsert an event (idempotent; older `updated_at` ignored)", body=commerce.EventIn)
async def ingest_event(request: web.Request, body: commerce.EventIn) -> dict:
    return await commerce.upsert_event(context(request), path_id(request), body)


@routes.put("/api/internal/commerce/groups/{id}")
@service_only
@_ingest(
    "Upsert a buy-together group (publishes group.updated on group:<id>)", body=commerce.GroupIn
)
async def ingest_group(request: web.Request, body: commerce.GroupIn) -> dict:
    return await commerce.upsert_group(context(request), path_id(request), body)


@routes.put("/api/internal/commerce/installment-plans/{id}")
@service_only
@_ingest(
    "Upsert an installment plan (idempotent; older `updated_at` ignored)", body=commerce.PlanIn
)
async def ingest_plan(request: web.Request, body: commerce.PlanIn) -> dict:
    return await commerce.upsert_plan(context(request), path_id(request), body)


@routes.put("/api/internal/commerce/groups/{id}/participants/{user_id}")
@service_only
@_ingest("A user joined a buy-together group (idempotent, versioned)", body=commerce.ParticipantIn)
async def ingest_join(request: web.Request, body: commerce.ParticipantIn) -> dict:
    return await commerce.set_participation(
        context(request),
        path_id(request),
        path_id(request, "user_id"),
        joined=True,
        version=body.updated_at,
        joined_at=body.joined_at,
    )


@routes.delete("/api/internal/commerce/groups/{id}/participants/{user_id}")
@service_only
@_ingest("A user left a buy-together group (idempotent, versioned)", query=DeleteQuery)
async def ingest_leave(request: web.Request, query: DeleteQuery) -> dict:
    return await commerce.set_participation(
        context(request),
        path_id(request),
        path_id(request, "user_id"),
        joined=False,
        version=query.updated_at,
    )


def _delete_route(collection: str):
    kind = _DELETE_KINDS[collection]

    @service_only
    @_ingest(
        f"Delete a {kind.replace('_', ' ')} (idempotent; leaves a tombstone)", query=DeleteQuery
    )
    async def handler(request: web.Request, query: DeleteQuery) -> dict:
        return await commerce.delete_entity(
            context(request), kind, path_id(request), query.updated_at
        )

    handler.__name__ = f"ingest_delete_{kind}"
    handler.__qualname__ = handler.__name__
    return handler


for _collection in _DELETE_KINDS:
    routes.delete(f"/api/internal/commerce/{_collection}/{{id}}")(_delete_route(_collection))


# Look-ups ---------------------------------------------------------------------------------


@routes.get("/api/products/search")
@endpoint(
    "Search products (full text, prefix per word); without q, newest first",
    query=ProductSearchQuery,
    response=ProductPage,
    tags=TAGS,
    errors=(422,),
)
async def search_products(request: web.Request, query: ProductSearchQuery) -> dict:
    return await commerce.search_products(
        context(request),
        principal(request),
        query=query.q,
        shop_id=query.shop_id,
        limit=query.limit,
        cursor=query.cursor,
    )


@routes.get("/api/products/{id}")
@endpoint("A product with its card", response=ProductOut, tags=TAGS, errors=(404, 422))
async def get_product(request: web.Request) -> dict:
    return await commerce.get_product_view(context(request), principal(request), path_id(request))


@routes.get("/api/products/{id}/installment-plans")
@endpoint(
    "A product's installment plans, shortest first, as plan cards",
    query=PageQuery,
    response=PlanPage,
    tags=TAGS,
    errors=(404, 422),
)
async def product_plans(request: web.Request, query: PageQuery) -> dict:
    return await commerce.list_product_plans(
        context(request),
        principal(request),
        path_id(request),
        limit=query.limit,
        cursor=query.cursor,
    )


@routes.get("/api/products/{id}/installment-plans/compare")
@endpoint(
    "Side-by-side comparison of some of a product's plans",
    query=CompareQuery,
    response=PlanComparison,
    tags=TAGS,
    errors=(404, 422),
)
async def compare_plans(request: web.Request, query: CompareQuery) -> dict:
    ids = []
    for part in query.plans.split(","):
        plan_id = parse_uuid(part.strip())
        if plan_id is None:
            raise ValidationFailed.field("plans", "must be comma-separated plan ids")
        ids.append(plan_id)
    return await commerce.compare_plans(context(request), principal(request), path_id(request), ids)


@routes.get("/api/installment-plans/{id}")
@endpoint("An installment plan with its card", response=PlanOut, tags=TAGS, errors=(404, 422))
async def get_plan(request: web.Request) -> dict:
    return await commerce.get_plan_view(context(request), principal(request), path_id(request))


@routes.get("/api/shops/search")
@endpoint(
    "Search shops by handle, name or description (for $mentions and tags)",
    query=SearchQuery,
    response=ShopPage,
    tags=TAGS,
    errors=(422,),
)
async def search_shops(request: web.Request, query: SearchQuery) -> dict:
    return await commerce.search_shops(
        context(request), principal(request), query=query.q, limit=query.limit, cursor=query.cursor
    )


@routes.get("/api/shops/{ref}")
@endpoint("A shop by handle ($handle or handle) or id", response=ShopOut, tags=TAGS, errors=(404,))
async def get_shop(request: web.Request) -> dict:
    ref = request.match_info["ref"]
    return await commerce.get_shop_view(context(request), principal(request), ref)


@routes.get("/api/events/search")
@endpoint(
    "Search events (full text); without q, upcoming events soonest first",
    query=EventSearchQuery,
    response=EventPage,
    tags=TAGS,
    errors=(422,),
)
async def search_events(request: web.Request, query: EventSearchQuery) -> dict:
    return await commerce.search_events(
        context(request),
        principal(request),
        query=query.q,
        include_past=query.include_past,
        limit=query.limit,
        cursor=query.cursor,
    )


@routes.get("/api/events/{id}")
@endpoint("An event with its card", response=EventOut, tags=TAGS, errors=(404, 422))
async def get_event(request: web.Request) -> dict:
    return await commerce.get_event_view(context(request), principal(request), path_id(request))


@routes.get("/api/buy-together/groups")
@endpoint(
    "Buy-together groups you created or joined (status=active: still joinable)",
    query=GroupListQuery,
    response=GroupPage,
    tags=TAGS,
    errors=(403, 422),
)
async def list_groups(request: web.Request, query: GroupListQuery) -> dict:
    return await commerce.list_groups(
        context(request),
        principal(request),
        user_id=query.user,
        status=query.status,
        limit=query.limit,
        cursor=query.cursor,
    )


@routes.get("/api/buy-together/groups/{id}")
@endpoint(
    "A buy-together group with its live card (subscribe to group:<id> for updates)",
    response=GroupOut,
    tags=TAGS,
    errors=(404, 422),
)
async def get_group(request: web.Request) -> dict:
    return await commerce.get_group_view(context(request), principal(request), path_id(request))


async def commerce_lifecycle(app: web.Application) -> AsyncIterator[None]:
    """Run the buy-together expiry timer for as long as the app runs."""
    ctx = app[CONTEXT]
    timer = GroupExpiryTimer(ctx)
    ctx.extras[commerce.EXPIRY_TIMER_KEY] = timer
    timer.start()
    yield
    await timer.stop()
    ctx.extras.pop(commerce.EXPIRY_TIMER_KEY, None)
