"""The commerce look-ups (user token): the searches the post-creation flows call, a user's
buy-together groups, and the entity reads, each with its ready-to-draw card."""

from __future__ import annotations

import uuid

from aiohttp import web
from pydantic import BaseModel, Field

from server.domain.commerce import lookups as actions
from server.errors import ValidationFailed
from server.http.commerce.schemas import (
    EventOut,
    EventPage,
    GroupOut,
    GroupPage,
    PlanComparison,
    PlanOut,
    PlanPage,
    ProductOut,
    ProductPage,
    ShopOut,
    ShopPage,
)
from server.http.endpoint import context, endpoint, path_id, principal
from server.ids import parse_uuid
from server.pagination import PageQuery

routes = web.RouteTableDef()
TAGS = ("commerce",)


class SearchQuery(PageQuery):
    q: str | None = Field(None, max_length=200, description="Words; each matches as a prefix")


class ProductSearchQuery(SearchQuery):
    shop_id: uuid.UUID | None = Field(None, description="Only this shop's products")


class EventSearchQuery(SearchQuery):
    include_past: bool = Field(False, description="Also events that have ended")


class GroupListQuery(PageQuery):
    status: actions.GroupStatusFilter = Field(
        "active", description="active = open or almost full (joinable); any = every status"
    )
    user: uuid.UUID | None = Field(
        None, description="Whose groups (created or joined); only your own. Default: you"
    )


class CompareQuery(BaseModel):
    plans: str = Field(max_length=300, description="Comma-separated plan ids (1 to 6)")


@routes.get("/api/products/search")
@endpoint(
    "Search products (full text, prefix per word); without q, newest first",
    query=ProductSearchQuery,
    response=ProductPage,
    tags=TAGS,
    errors=(422,),
    operation_id="products.search",
)
async def search_products(request: web.Request, query: ProductSearchQuery) -> dict:
    """Product cards for the post-creation product picker and search: every word of `q` matches
    as a prefix (optionally within one shop); without `q`, the newest products."""
    return await actions.search_products(
        context(request),
        principal(request),
        query=query.q,
        shop_id=query.shop_id,
        limit=query.limit,
        cursor=query.cursor,
    )


@routes.get("/api/products/{id}")
@endpoint(
    "A product with its card",
    response=ProductOut,
    tags=TAGS,
    errors=(404, 422),
    operation_id="products.get",
)
async def get_product(request: web.Request) -> dict:
    """The product's fields and its ready-to-draw card (price, availability, shop, link)."""
    return await actions.get_product_view(context(request), principal(request), path_id(request))


@routes.get("/api/products/{id}/installment-plans")
@endpoint(
    "A product's installment plans, shortest first, as plan cards",
    query=PageQuery,
    response=PlanPage,
    tags=TAGS,
    errors=(404, 422),
    operation_id="products.list_installment_plans",
)
async def product_plans(request: web.Request, query: PageQuery) -> dict:
    """The product's installment plans as plan cards, shortest duration first, with the
    product's card."""
    return await actions.list_product_plans(
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
    operation_id="products.compare_installment_plans",
)
async def compare_plans(request: web.Request, query: CompareQuery) -> dict:
    """The given plans (comma-separated ids, each a plan of this product) side by side, with
    the lowest monthly amount and the lowest total cost marked."""
    ids = []
    for part in query.plans.split(","):
        plan_id = parse_uuid(part.strip())
        if plan_id is None:
            raise ValidationFailed.field("plans", "must be comma-separated plan ids")
        ids.append(plan_id)
    return await actions.compare_plans(context(request), principal(request), path_id(request), ids)


@routes.get("/api/installment-plans/{id}")
@endpoint(
    "An installment plan with its card",
    response=PlanOut,
    tags=TAGS,
    errors=(404, 422),
    operation_id="installment_plans.get",
)
async def get_plan(request: web.Request) -> dict:
    """The plan's fields and its card (monthly amount, total cost, interest, deep link)."""
    return await actions.get_plan_view(context(request), principal(request), path_id(request))


@routes.get("/api/shops/search")
@endpoint(
    "Search shops by handle, name or description (for $mentions and tags)",
    query=SearchQuery,
    response=ShopPage,
    tags=TAGS,
    errors=(422,),
    operation_id="shops.search",
)
async def search_shops(request: web.Request, query: SearchQuery) -> dict:
    """Shop cards matching `q` by handle, name or description, for `$handle` mentions and shop
    tags."""
    return await actions.search_shops(
        context(request), principal(request), query=query.q, limit=query.limit, cursor=query.cursor
    )


@routes.get("/api/shops/{ref}")
@endpoint(
    "A shop by handle ($handle or handle) or id",
    response=ShopOut,
    tags=TAGS,
    errors=(404,),
    operation_id="shops.get",
    path_params={"ref": "The shop's handle (with or without `$`) or id (a UUID): any string"},
)
async def get_shop(request: web.Request) -> dict:
    """The shop's fields, its product count and its card, found by handle or by id."""
    ref = request.match_info["ref"]
    return await actions.get_shop_view(context(request), principal(request), ref)


@routes.get("/api/events/search")
@endpoint(
    "Search events (full text); without q, upcoming events soonest first",
    query=EventSearchQuery,
    response=EventPage,
    tags=TAGS,
    errors=(422,),
    operation_id="events.search",
)
async def search_events(request: web.Request, query: EventSearchQuery) -> dict:
    """Event cards matching `q` (full text); without `q`, upcoming events soonest first. Ended
    events only with `include_past`."""
    return await actions.search_events(
        context(request),
        principal(request),
        query=query.q,
        include_past=query.include_past,
        limit=query.limit,
        cursor=query.cursor,
    )


@routes.get("/api/events/{id}")
@endpoint(
    "An event with its card",
    response=EventOut,
    tags=TAGS,
    errors=(404, 422),
    operation_id="events.get",
)
async def get_event(request: web.Request) -> dict:
    """The event's fields and its card (dates in the event's time zone, location, tickets)."""
    return await actions.get_event_view(context(request), principal(request), path_id(request))


@routes.get("/api/buy-together/groups")
@endpoint(
    "Buy-together groups you created or joined (status=active: still joinable)",
    query=GroupListQuery,
    response=GroupPage,
    tags=TAGS,
    errors=(403, 422),
    operation_id="buy_together.list_groups",
)
async def list_groups(request: web.Request, query: GroupListQuery) -> dict:
    """The groups a user created or joined, as cards (the post-creation "link a group" picker).
    Only your own (moderators excepted): which groups someone joined is their business."""
    return await actions.list_groups(
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
    operation_id="buy_together.get_group",
)
async def get_group(request: web.Request) -> dict:
    """The group's fields and its live card (spots left, time remaining, status); subscribe to
    `group:<id>` on the gateway for updates."""
    return await actions.get_group_view(context(request), principal(request), path_id(request))
