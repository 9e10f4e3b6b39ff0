"""The commands of commerce ingest: one pydantic model per payload the commerce services send
(shops, products, events, buy-together groups, installment plans, participation), validated
once at the edge, shared by every transport that ingests.

Unknown fields are ignored (forward compatibility); money, currencies, URLs, handles, zones and
moments are checked here, before anything reaches SQL.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field

from server.domain import cards
from server.errors import ValidationFailed


class UnknownReference(ValidationFailed):
    """A payload names a shop, product, group or user this server has not (yet) ingested.
    Distinct problem type so a commerce queue can retry once the parent has been sent."""

    code = "unknown_reference"
    title = "Unknown reference"

    @classmethod
    def of(cls, field: str, what: str) -> UnknownReference:
        return cls(f"{field}: no {what} with this id", errors={field: [f"no {what} with this id"]})


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


class Payload(BaseModel):
    # Unknown fields are ignored so the commerce services can add fields before we read them.
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    id: uuid.UUID | None = Field(None, description="Optional; must equal the id in the URL")
    updated_at: Moment = Field(
        description="The entity's version at the commerce service (ISO 8601 with offset)"
    )


class ShopIn(Payload):
    handle: Annotated[str, BeforeValidator(_check_handle)] = Field(
        description="Unique; what `$handle` mentions resolve"
    )
    name: Name
    owner_id: uuid.UUID
    logo_url: Url | None = None
    description: Text | None = None
    is_verified: bool = False


class ProductIn(Payload):
    shop_id: uuid.UUID
    owner_id: uuid.UUID | None = Field(None, description="The seller; defaults to the shop owner")
    name: Name
    description: Text | None = None
    images: list[Url] = Field(default_factory=list, max_length=20)
    price: Amount = Field(description='Decimal string (preferred) or number, e.g. "1200.00"')
    currency: Currency
    is_available: bool = True


TicketStatus = Literal["available", "limited", "sold_out", "not_on_sale", "cancelled"]


class EventIn(Payload):
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


class GroupIn(Payload):
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


class PlanIn(Payload):
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
