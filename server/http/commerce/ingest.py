"""The commerce ingest API (`PUT` / `DELETE /api/internal/commerce/...`): what the commerce
services call to feed the read model (shops, products, events, buy-together groups and their
participants, installment plans). Authenticated by the service token (service_auth), never by a
user token. Each handler builds the domain command and calls one domain action.
"""

from __future__ import annotations

from typing import Annotated

from aiohttp import web
from pydantic import BaseModel, BeforeValidator, Field

from server.domain.commerce import ingest as actions
from server.domain.commerce.commands import (
    EventIn,
    GroupIn,
    Moment,
    ParticipantIn,
    PlanIn,
    ProductIn,
    ShopIn,
)
from server.http.commerce.schemas import IngestResult
from server.http.commerce.service_auth import service_only
from server.http.endpoint import context, endpoint, path_id

routes = web.RouteTableDef()
INGEST_TAGS = ("commerce-ingest",)


def _plus_from_query(value: object) -> object:
    """`?updated_at=...T10:00:00+02:00` sent unencoded arrives with a space for the `+`."""
    if isinstance(value, str) and " " in value.strip():
        return value.strip().replace(" ", "+")
    return value


class DeleteQuery(BaseModel):
    updated_at: Annotated[Moment | None, BeforeValidator(_plus_from_query)] = Field(
        None, description="Version of the delete (default: now); an older delete is ignored"
    )


def _ingest(
    summary: str,
    operation_id: str,
    body: type[BaseModel] | None = None,
    query: type[BaseModel] | None = None,
    examples: dict[str, object] | None = None,
):
    return endpoint(
        summary,
        body=body,
        query=query,
        response=IngestResult,
        public=True,  # not a user route: require_service authenticates it
        tags=INGEST_TAGS,
        errors=(401, 403, 409, 422, 503),
        operation_id=operation_id,
        examples=examples,
    )


_DELETE_KINDS = {
    "shops": "shop",
    "products": "product",
    "events": "event",
    "groups": "group",
    "installment-plans": "installment_plan",
}


@routes.put("/api/internal/commerce/shops/{id}")
@service_only
@_ingest(
    "Upsert a shop (idempotent; older `updated_at` ignored)",
    "ingest.upsert_shop",
    body=ShopIn,
)
async def ingest_shop(request: web.Request, body: ShopIn) -> dict:
    """Creates or updates the shop with this id; the owner must be a user of this server.
    Versioned by `updated_at`: a payload not newer than the stored version, or older than a
    recorded delete, is answered with `applied` false. 409 when another shop has the handle."""
    return await actions.upsert_shop(context(request), path_id(request), body)


@routes.put("/api/internal/commerce/products/{id}")
@service_only
@_ingest(
    "Upsert a product (idempotent; older `updated_at` ignored)",
    "ingest.upsert_product",
    body=ProductIn,
    examples={
        "A product": {
            "shop_id": "0192d1e4-6b00-7c1e-8f2a-3b7d5e6f7a01",
            "name": "Red city bike",
            "description": "Steel frame, 3 gears, front basket.",
            "images": ["https://cdn.example.com/products/red-bike.jpg"],
            "price": "349.00",
            "currency": "EUR",
            "is_available": True,
            "updated_at": "2026-03-01T10:00:00+00:00",
        }
    },
)
async def ingest_product(request: web.Request, body: ProductIn) -> dict:
    """Creates or updates the product with this id; its shop must have been ingested first (422
    `unknown_reference` otherwise, so the queue can retry). Versioned by `updated_at` like every
    ingest; live buy-together cards of the product are refreshed."""
    return await actions.upsert_product(context(request), path_id(request), body)


@routes.put("/api/internal/commerce/events/{id}")
@service_only
@_ingest(
    "Upsert an event (idempotent; older `updated_at` ignored)",
    "ingest.upsert_event",
    body=EventIn,
)
async def ingest_event(request: web.Request, body: EventIn) -> dict:
    """Creates or updates the event with this id (its shop and organizer, if given, must exist).
    Versioned by `updated_at` like every ingest."""
    return await actions.upsert_event(context(request), path_id(request), body)


@routes.put("/api/internal/commerce/groups/{id}")
@service_only
@_ingest(
    "Upsert a buy-together group (publishes group.updated on group:<id>)",
    "ingest.upsert_group",
    body=GroupIn,
)
async def ingest_group(request: web.Request, body: GroupIn) -> dict:
    """Creates or updates the group with this id (its product and creator must exist); when
    applied, subscribers of `group:<id>` get the new card. Versioned by `updated_at`."""
    return await actions.upsert_group(context(request), path_id(request), body)


@routes.put("/api/internal/commerce/installment-plans/{id}")
@service_only
@_ingest(
    "Upsert an installment plan (idempotent; older `updated_at` ignored)",
    "ingest.upsert_installment_plan",
    body=PlanIn,
)
async def ingest_plan(request: web.Request, body: PlanIn) -> dict:
    """Creates or updates the plan with this id (its product must exist; same currency).
    Versioned by `updated_at` like every ingest."""
    return await actions.upsert_plan(context(request), path_id(request), body)


@routes.put("/api/internal/commerce/groups/{id}/participants/{user_id}")
@service_only
@_ingest(
    "A user joined a buy-together group (idempotent, versioned)",
    "ingest.join_group",
    body=ParticipantIn,
)
async def ingest_join(request: web.Request, body: ParticipantIn) -> dict:
    """Records that the user joined the group. Versioned per group and user: a late, older join
    cannot undo a newer leave."""
    return await actions.set_participation(
        context(request),
        path_id(request),
        path_id(request, "user_id"),
        joined=True,
        version=body.updated_at,
        joined_at=body.joined_at,
    )


@routes.delete("/api/internal/commerce/groups/{id}/participants/{user_id}")
@service_only
@_ingest(
    "A user left a buy-together group (idempotent, versioned)",
    "ingest.leave_group",
    query=DeleteQuery,
)
async def ingest_leave(request: web.Request, query: DeleteQuery) -> dict:
    """Records that the user left the group, at `updated_at` (default: now). Versioned per
    group and user: a late, older leave cannot undo a newer join."""
    return await actions.set_participation(
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
        f"Delete a {kind.replace('_', ' ')} (idempotent; leaves a tombstone)",
        f"ingest.delete_{kind}",
        query=DeleteQuery,
    )
    async def handler(request: web.Request, query: DeleteQuery) -> dict:
        """Deletes at `updated_at` (default: now) and keeps a tombstone, so a late upsert older
        than the delete is not applied; a stored version newer than the delete wins. Deleting
        what is absent succeeds."""
        return await actions.delete_entity(
            context(request), kind, path_id(request), query.updated_at
        )

    handler.__name__ = f"ingest_delete_{kind}"
    handler.__qualname__ = handler.__name__
    return handler


for _collection in _DELETE_KINDS:
    routes.delete(f"/api/internal/commerce/{_collection}/{{id}}")(_delete_route(_collection))
