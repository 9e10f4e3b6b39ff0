"""Response models of the commerce routes: the documentation of the cards (the cards
themselves come from server.domain.cards) and of the ingest answer."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class Money(BaseModel):
    """An exact amount of money, with its display form."""

    amount: str = Field(description="Decimal string with the currency's number of decimals")
    currency: str
    minor_units: int
    formatted: str


class Cta(_Open):
    """A call to action: the button's label and where it leads."""

    label: str
    link: str


class ShopRef(_Open):
    """A shop, briefly."""

    id: uuid.UUID
    handle: str | None
    name: str | None
    logo_url: str | None
    link: str | None


class ProductRef(_Open):
    """A product, briefly."""

    id: uuid.UUID
    name: str | None
    image_url: str | None
    price: Money | None
    link: str


class ProductCard(_Open):
    """A product card, ready to draw in a post, message or list."""

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
    """A shop card, ready to draw."""

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
    """An event card, ready to draw: dates in the event's time zone, phase
    and ticket state."""

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
    """A buy-together group card: price per participant once full, savings,
    spots left and time remaining, as of `as_of`; live updates come on `group:<id>`."""

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
    """An installment plan card: monthly amount, total cost, interest and down
    payment."""

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
    """Some of a product's plans side by side, with the cheapest monthly
    and the cheapest in total marked."""

    kind: Literal["installment_plan_comparison"]
    product: ProductCard
    plans: list[PlanCard]
    lowest_monthly_plan_id: uuid.UUID | None
    lowest_total_plan_id: uuid.UUID | None


class ProductOut(_Open):
    """A product with its card."""

    id: uuid.UUID
    shop_id: uuid.UUID
    owner_id: uuid.UUID
    name: str
    description: str | None
    updated_at: datetime
    card: ProductCard


class ShopOut(_Open):
    """A shop with its card."""

    id: uuid.UUID
    handle: str
    name: str
    owner_id: uuid.UUID
    products_count: int
    updated_at: datetime
    card: ShopCard


class EventOut(_Open):
    """An event with its card."""

    id: uuid.UUID
    title: str
    description: str | None
    starts_at: datetime
    updated_at: datetime
    card: EventCard


class GroupOut(_Open):
    """A buy-together group with its card."""

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
    """An installment plan with its card."""

    id: uuid.UUID
    product_id: uuid.UUID
    duration_months: int
    updated_at: datetime
    card: PlanCard


class ProductPage(BaseModel):
    """A page of product cards."""

    items: list[ProductCard]
    next_cursor: str | None


class ShopPage(BaseModel):
    """A page of shop cards."""

    items: list[ShopCard]
    next_cursor: str | None


class EventPage(BaseModel):
    """A page of event cards."""

    items: list[EventCard]
    next_cursor: str | None


class GroupPage(BaseModel):
    """A page of buy-together group cards."""

    items: list[GroupCard]
    next_cursor: str | None


class PlanPage(BaseModel):
    """A page of a product's installment plan cards, with the product's card."""

    product: ProductCard
    items: list[PlanCard]
    next_cursor: str | None


class IngestResult(_Open):
    """What an ingest call did. `applied` is false (`outcome` stale, duplicate or deleted_newer)
    when the stored version, or a recorded delete, is as new as the payload or newer."""

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
