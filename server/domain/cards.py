"""Commerce cards: pure functions from read-model rows to what a client draws.

No I/O and no clock of their own: every function that depends on time takes `now`. Money is
Decimal throughout (never float); in JSON an amount is a string with the currency's number of
decimals plus its integer minor units and a formatted label.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

Row = Mapping[str, Any]

# ISO 4217 active codes. Minor units are 2 unless listed in _EXPONENTS.
CURRENCIES = frozenset(
    """AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BOV BRL BSD
    BTN BWP BYN BZD CAD CDF CHE CHF CHW CLF CLP CNY COP COU CRC CUC CUP CVE CZK DJF DKK DOP DZD
    EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR
    ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD
    MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR
    PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SLL SOS SRD SSP STN SVC SYP SZL
    THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD USN UYI UYU UYW UZS VED VES VND VUV WST XAF
    XCD XCG XOF XPF YER ZAR ZMW ZWG ZWL""".split()
)
_EXPONENTS = {
    **dict.fromkeys(
        "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF".split(), 0
    ),
    **dict.fromkeys("BHD IQD JOD KWD LYD OMR TND".split(), 3),
    "CLF": 4,
    "UYW": 4,
}
_SYMBOLS = {
    "USD": "$",
    "EUR": "€",
    "GBP": "£",
    "JPY": "¥",
    "CNY": "CN¥",
    "INR": "₹",
    "KRW": "₩",
    "NGN": "₦",
    "CAD": "CA$",
    "AUD": "A$",
    "NZD": "NZ$",
    "HKD": "HK$",
    "MXN": "MX$",
    "BRL": "R$",
    "ILS": "₪",
    "VND": "₫",
    "PHP": "₱",
    "TRY": "₺",
    "UAH": "₴",
}

ALMOST_FULL_SPOTS = 2  # "Almost Full (1-2 spots left)"
GROUP_LABEL = "Buy Together 🤝"
PLAN_BADGE = "Pay in installments 💳"


# Money -----------------------------------------------------------------------------------


def currency_exponent(currency: str) -> int:
    return _EXPONENTS.get(currency, 2)


def quantize(amount: Decimal, currency: str) -> Decimal:
    return amount.quantize(Decimal(1).scaleb(-currency_exponent(currency)), ROUND_HALF_UP)


def has_valid_precision(amount: Decimal, currency: str) -> bool:
    """True when `amount` has no more decimals than the currency's minor unit allows."""
    return amount == amount.quantize(Decimal(1).scaleb(-currency_exponent(currency)))


def format_amount(amount: Decimal, currency: str) -> str:
    """`$1,200`, `$1,199.50`, `¥5,000`, `CHF 12.30`: whole amounts drop their decimals."""
    value = quantize(amount, currency)
    if value == value.to_integral_value():
        number = f"{int(value):,}"
    else:
        number = f"{value:,.{currency_exponent(currency)}f}"
    symbol = _SYMBOLS.get(currency)
    return f"{symbol}{number}" if symbol else f"{currency} {number}"


def money(amount: Decimal | None, currency: str | None) -> dict[str, Any] | None:
    """`{"amount": "1200.00", "currency": "USD", "minor_units": 120000, "formatted": "$1,200"}`."""
    if amount is None or currency is None:
        return None
    value = quantize(Decimal(amount), currency)
    return {
        "amount": str(value),
        "currency": currency,
        "minor_units": int(value.scaleb(currency_exponent(currency))),
        "formatted": format_amount(value, currency),
    }


def percent_label(rate: Decimal) -> str:
    """`5`, `5.25`, `0` (no trailing zeros, never scientific notation)."""
    text = format(Decimal(rate).normalize(), "f")
    return text


# Shared bits ------------------------------------------------------------------------------


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if value else None


def _id(value: Any) -> str:
    return str(value)


def product_link(product_id: Any, plan_id: Any | None = None) -> str:
    base = f"/products/{product_id}"
    return f"{base}?plan={plan_id}" if plan_id is not None else base


def shop_link(handle: str) -> str:
    return f"/shops/{handle}"


def event_link(event_id: Any) -> str:
    return f"/events/{event_id}"


def group_link(group_id: Any) -> str:
    return f"/buy-together/groups/{group_id}"


def _first_image(images: Iterable[str] | None) -> str | None:
    for image in images or ():
        return image
    return None


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def time_remaining_label(seconds: float) -> str:
    """`2 days left`, `47 hours left`, `1 minute left`, `Less than a minute left`, `Expired`.
    Rounded down; hours up to two days, so 1 day 23 hours never reads as "1 day left"."""
    if seconds <= 0:
        return "Expired"
    if seconds < 60:
        return "Less than a minute left"
    if seconds < 3600:
        return _plural(int(seconds // 60), "minute") + " left"
    if seconds < 2 * 86400:
        return _plural(int(seconds // 3600), "hour") + " left"
    return _plural(int(seconds // 86400), "day") + " left"


# Product and shop -------------------------------------------------------------------------


def shop_ref(row: Row, prefix: str = "shop_") -> dict[str, Any] | None:
    """The small shop block a product card carries (row columns `shop_id`, `shop_name`, ...)."""
    if row.get(prefix + "id") is None:
        return None
    handle = row.get(prefix + "handle")
    return {
        "id": _id(row[prefix + "id"]),
        "handle": handle,
        "name": row.get(prefix + "name"),
        "logo_url": row.get(prefix + "logo_url"),
        "link": shop_link(handle) if handle else None,
    }


def product_card(row: Row) -> dict[str, Any]:
    """Image, name, price (raw and formatted), shop name and the click-through target.

    `row` is a products row joined with its shop as `shop_name`, `shop_handle`, `shop_logo_url`
    (what server.store.commerce.get_product returns)."""
    return {
        "kind": "product",
        "id": _id(row["id"]),
        "name": row["name"],
        "image_url": _first_image(row.get("images")),
        "images": list(row.get("images") or ()),
        "price": money(row["price"], row["currency"]),
        "is_available": bool(row.get("is_available", True)),
        "shop": shop_ref(row),
        "owner_id": _id(row["owner_id"]) if row.get("owner_id") else None,
        "link": product_link(row["id"]),
        "cta": {"label": "View Product", "link": product_link(row["id"])},
    }


def product_ref(row: Row, prefix: str = "product_") -> dict[str, Any]:
    """The product block of group and plan cards (row columns `product_id`, `product_name`...)."""
    product_id = row[prefix + "id"]
    return {
        "id": _id(product_id),
        "name": row.get(prefix + "name"),
        "image_url": _first_image(row.get(prefix + "images")),
        "price": money(row.get(prefix + "price"), row.get(prefix + "currency")),
        "link": product_link(product_id),
    }


def shop_card(row: Row) -> dict[str, Any]:
    handle = row["handle"]
    card = {
        "kind": "shop",
        "id": _id(row["id"]),
        "handle": handle,
        "mention": f"${handle}",
        "name": row["name"],
        "logo_url": row.get("logo_url"),
        "description": row.get("description"),
        "is_verified": bool(row.get("is_verified", False)),
        "owner_id": _id(row["owner_id"]),
        "link": shop_link(handle),
        "cta": {"label": "Visit Shop", "link": shop_link(handle)},
    }
    if "products_count" in row:
        card["products_count"] = int(row["products_count"] or 0)
    return card


# Events -----------------------------------------------------------------------------------

TICKET_LABELS = {
    "available": "Tickets available",
    "limited": "Few tickets left",
    "sold_out": "Sold out",
    "not_on_sale": "Tickets not on sale yet",
    "cancelled": "Event cancelled",
}


def _zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def event_phase(starts_at: datetime, ends_at: datetime | None, now: datetime) -> str:
    """`upcoming`, `live` (started, not ended) or `ended`. Without an end, it ends as it starts."""
    if now > (ends_at or starts_at):
        return "ended"
    if now >= starts_at:
        return "live"
    return "upcoming"


def price_range(
    low: Decimal | None, high: Decimal | None, currency: str | None
) -> dict[str, Any] | None:
    """`Free`, `$25`, `Free - $80`, `$25 - $80` (en dash); None when the service sent no prices."""
    if currency is None:
        return None
    if low is None:
        if high is None:
            return None
        low = high
    elif high is None:
        high = low
    if high == 0:
        label = "Free"
    elif low == high:
        label = format_amount(low, currency)
    else:
        start = "Free" if low == 0 else format_amount(low, currency)
        label = f"{start} – {format_amount(high, currency)}"
    return {
        "min": money(low, currency),
        "max": money(high, currency),
        "is_free": high == 0,
        "label": label,
    }


def event_date_label(starts_at: datetime, timezone: str | None) -> str:
    """`Sat, Mar 9, 2024 · 7:00 PM CET` in the event's own time zone."""
    local = starts_at.astimezone(_zone(timezone))
    hour = local.hour % 12 or 12
    ampm = "AM" if local.hour < 12 else "PM"
    day = local.strftime("%a, %b ") + str(local.day) + local.strftime(", %Y")
    return f"{day} · {hour}:{local.minute:02d} {ampm} {local.tzname()}"


def event_card(row: Row, now: datetime) -> dict[str, Any]:
    phase = event_phase(row["starts_at"], row.get("ends_at"), now)
    ticket_status = row["ticket_status"]
    if ticket_status == "cancelled":
        phase = "cancelled"
    tickets_available = phase in ("upcoming", "live") and ticket_status in ("available", "limited")
    label = TICKET_LABELS[ticket_status] if phase != "ended" else "Event ended"
    zone = _zone(row.get("timezone"))
    location_parts = [p for p in (row.get("location_name"), row.get("location_address")) if p]
    return {
        "kind": "event",
        "id": _id(row["id"]),
        "title": row["title"],
        "image_url": row.get("image_url"),
        "starts_at": _iso(row["starts_at"]),
        "ends_at": _iso(row.get("ends_at")),
        "timezone": zone.key,
        "local_starts_at": row["starts_at"].astimezone(zone).isoformat(),
        "date_label": event_date_label(row["starts_at"], zone.key),
        "location": {
            "name": row.get("location_name"),
            "address": row.get("location_address"),
            "is_online": bool(row.get("is_online", False)),
            "label": "Online" if row.get("is_online") else ", ".join(location_parts) or None,
        },
        "phase": phase,
        "ticket_status": ticket_status,
        "tickets_available": tickets_available,
        "ticket_label": label,
        "price_range": price_range(row.get("price_min"), row.get("price_max"), row.get("currency")),
        "link": event_link(row["id"]),
        "cta": {"label": "View Event", "link": event_link(row["id"])},
    }


# Buy-together groups ----------------------------------------------------------------------

GROUP_STATUS_LABELS = {
    "open": "Open",
    "almost_full": "Almost Full",
    "full": "Group Full",
    "expired": "Expired",
    "cancelled": "Cancelled",
}


def group_status(
    *,
    participant_count: int,
    total_spots: int,
    expires_at: datetime,
    now: datetime,
    state: str = "active",
) -> str:
    """open (3+ spots left) / almost_full (1-2 left) / full (none left) / expired (time ran out
    before it filled) / cancelled (by the commerce service). A group that filled stays full
    after its deadline: it succeeded."""
    if state == "cancelled":
        return "cancelled"
    spots_left = total_spots - participant_count
    if spots_left <= 0:
        return "full"
    if now >= expires_at:
        return "expired"
    if spots_left <= ALMOST_FULL_SPOTS:
        return "almost_full"
    return "open"


def group_card(row: Row, now: datetime, *, viewer_joined: bool | None = None) -> dict[str, Any]:
    """The buy-together card. `row` is a group joined with its product (`product_name`,
    `product_images`, `product_price`, `product_currency`)."""
    count = int(row["participant_count"])
    total = int(row["total_spots"])
    status = group_status(
        participant_count=count,
        total_spots=total,
        expires_at=row["expires_at"],
        now=now,
        state=row.get("state", "active"),
    )
    spots_left = max(0, total - count)
    currency = row["currency"]
    savings = max(Decimal(0), Decimal(row["individual_price"]) - Decimal(row["target_price"]))
    savings_percent = (
        int((savings * 100 / Decimal(row["individual_price"])).to_integral_value(ROUND_HALF_UP))
        if row["individual_price"]
        else 0
    )
    remaining = (row["expires_at"] - now).total_seconds()
    seconds = max(0, math.ceil(remaining))  # 0 only once it has expired
    join_enabled = status in ("open", "almost_full")
    if status in ("full", "expired", "cancelled"):
        cta_label = GROUP_STATUS_LABELS[status]
    else:
        cta_label = "Join Group"
    target_label = format_amount(Decimal(row["target_price"]), currency)
    card = {
        "kind": "buy_together_group",
        "id": _id(row["id"]),
        "label": GROUP_LABEL,
        "product": product_ref(row),
        "creator_id": _id(row["creator_id"]),
        "target_price": money(row["target_price"], currency),
        "individual_price": money(row["individual_price"], currency),
        "savings": money(savings, currency),
        "savings_percent": savings_percent,
        "price_label": (
            f"{target_label} (Save {format_amount(savings, currency)}!)"
            if savings > 0
            else target_label
        ),
        "participants": count,
        "total_spots": total,
        "spots_left": spots_left,
        "progress": min(1.0, count / total) if total else 1.0,
        "progress_label": f"{min(count, total)}/{total} spots filled",
        "expires_at": _iso(row["expires_at"]),
        "seconds_remaining": seconds if status not in ("full", "cancelled") else 0,
        "time_remaining_label": (
            time_remaining_label(remaining) if status in ("open", "almost_full") else None
        ),
        "status": status,
        "status_label": GROUP_STATUS_LABELS[status],
        "spots_left_label": (
            _plural(spots_left, "spot") + " left" if status in ("open", "almost_full") else None
        ),
        "join_enabled": join_enabled,
        "grayed_out": status in ("expired", "cancelled"),
        "cta": {"label": cta_label, "enabled": join_enabled, "link": group_link(row["id"])},
        "link": group_link(row["id"]),
        "as_of": _iso(now),
    }
    if viewer_joined is not None:
        card["viewer_joined"] = viewer_joined
    return card


# Installment plans ------------------------------------------------------------------------


def duration_label(months: int) -> str:
    return _plural(int(months), "month")


def interest_label(rate: Decimal) -> str:
    return "0% interest" if Decimal(rate) == 0 else f"{percent_label(rate)}% APR"


def plan_card(row: Row) -> dict[str, Any]:
    """One installment plan. `row` is a plan joined with its product (`product_name`,
    `product_images`, `product_price`, `product_currency`)."""
    currency = row["currency"]
    total = Decimal(row["total_cost"])
    down = Decimal(row.get("down_payment") or 0)
    price = row.get("product_price")
    same_currency = row.get("product_currency") in (None, currency)
    extra_cost = (
        total - Decimal(price) if price is not None and same_currency and total > price else None
    )
    link = product_link(row["product_id"], row["id"])
    monthly_label = format_amount(Decimal(row["monthly_amount"]), currency) + "/month"
    return {
        "kind": "installment_plan",
        "id": _id(row["id"]),
        "badge": PLAN_BADGE,
        "product": product_ref(row),
        "duration_months": int(row["duration_months"]),
        "duration_label": duration_label(row["duration_months"]),
        "monthly_amount": money(row["monthly_amount"], currency),
        "monthly_label": monthly_label,
        "total_cost": money(total, currency),
        "total_label": f"{format_amount(total, currency)} total",
        "total_differs_from_price": price is None or not same_currency or total != price,
        "cost_of_credit": money(extra_cost, currency) if extra_cost is not None else None,
        "interest_rate": percent_label(row["interest_rate"]),
        "interest_label": interest_label(row["interest_rate"]),
        "down_payment": money(down, currency) if down > 0 else None,
        "down_payment_label": f"{format_amount(down, currency)} down" if down > 0 else None,
        "link": link,
        "cta": {"label": "Buy with Plan", "link": link},
    }


def plan_comparison(product_row: Row, plan_rows: Iterable[Row]) -> dict[str, Any]:
    """Side-by-side comparison of several plans of one product, shortest plan first, with the
    lowest monthly payment and the lowest total cost marked."""
    cards = sorted(
        (plan_card(row) for row in plan_rows),
        key=lambda c: (c["duration_months"], c["id"]),
    )
    lowest_monthly = min(cards, key=lambda c: Decimal(c["monthly_amount"]["amount"]), default=None)
    lowest_total = min(cards, key=lambda c: Decimal(c["total_cost"]["amount"]), default=None)
    for card in cards:
        card["is_lowest_monthly"] = lowest_monthly is not None and card is lowest_monthly
        card["is_lowest_total"] = lowest_total is not None and card is lowest_total
        card["cta"] = {"label": "Select", "link": card["link"]}
    return {
        "kind": "installment_plan_comparison",
        "product": product_card(product_row),
        "plans": cards,
        "lowest_monthly_plan_id": lowest_monthly["id"] if lowest_monthly else None,
        "lowest_total_plan_id": lowest_total["id"] if lowest_total else None,
    }
