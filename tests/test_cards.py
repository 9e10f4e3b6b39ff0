"""Pure card functions: money, every buy-together status boundary, plans and events."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from server.domain import cards

NOW = datetime(2024, 3, 9, 12, 0, tzinfo=UTC)
PRODUCT_ID = uuid.UUID("01890000-0000-7000-8000-000000000001")


def product_row(**extra):
    return {
        "id": PRODUCT_ID,
        "shop_id": uuid.uuid4(),
        "owner_id": uuid.uuid4(),
        "name": "Gaming Laptop",
        "description": "Fast",
        "images": ["https://cdn.example.com/a.jpg", "https://cdn.example.com/b.jpg"],
        "price": Decimal("1200.0000"),
        "currency": "USD",
        "is_available": True,
        "shop_handle": "acme",
        "shop_name": "Acme",
        "shop_logo_url": None,
        **extra,
    }


def group_row(count: int, total: int = 5, expires_at=NOW + timedelta(days=2), **extra):
    return {
        "id": uuid.uuid4(),
        "product_id": PRODUCT_ID,
        "product_name": "iPhone 15",
        "product_images": ["https://cdn.example.com/p.jpg"],
        "product_price": Decimal("900"),
        "product_currency": "USD",
        "creator_id": uuid.uuid4(),
        "target_price": Decimal("800.0000"),
        "individual_price": Decimal("900.0000"),
        "currency": "USD",
        "total_spots": total,
        "participant_count": count,
        "expires_at": expires_at,
        "state": "active",
        **extra,
    }


def plan_row(months: int, monthly: str, total: str, rate: str = "0", down: str = "0", **extra):
    return {
        "id": uuid.uuid4(),
        "product_id": PRODUCT_ID,
        "product_name": "Gaming Laptop",
        "product_images": [],
        "product_price": Decimal("1200"),
        "product_currency": "USD",
        "duration_months": months,
        "monthly_amount": Decimal(monthly),
        "total_cost": Decimal(total),
        "interest_rate": Decimal(rate),
        "down_payment": Decimal(down),
        "currency": "USD",
        **extra,
    }


# Money ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "amount, currency, formatted, raw, minor",
    [
        ("1200", "USD", "$1,200", "1200.00", 120000),
        ("1199.5", "USD", "$1,199.50", "1199.50", 119950),
        ("0.99", "EUR", "€0.99", "0.99", 99),
        ("5000", "JPY", "¥5,000", "5000", 5000),
        ("1.234", "KWD", "KWD 1.234", "1.234", 1234),
        ("12.30", "CHF", "CHF 12.30", "12.30", 1230),
        ("1234567.89", "GBP", "£1,234,567.89", "1234567.89", 123456789),
    ],
)
def test_money_is_exact_and_formatted_per_currency(amount, currency, formatted, raw, minor):
    value = cards.money(Decimal(amount), currency)
    assert value == {
        "amount": raw,
        "currency": currency,
        "minor_units": minor,
        "formatted": formatted,
    }
    assert isinstance(value["minor_units"], int)


def test_precision_check_follows_the_currency_minor_unit():
    assert cards.has_valid_precision(Decimal("10.50"), "USD")
    assert not cards.has_valid_precision(Decimal("10.505"), "USD")
    assert cards.has_valid_precision(Decimal("1500"), "JPY")
    assert not cards.has_valid_precision(Decimal("1500.5"), "JPY")
    assert cards.has_valid_precision(Decimal("1.005"), "BHD")


# Buy-together status boundaries -----------------------------------------------------------


@pytest.mark.parametrize(
    "count, total, status, join_enabled, cta",
    [
        (0, 5, "open", True, "Join Group"),
        (2, 5, "open", True, "Join Group"),  # 3 spots left
        (3, 5, "almost_full", True, "Join Group"),  # 2 left
        (4, 5, "almost_full", True, "Join Group"),  # 1 left
        (5, 5, "full", False, "Group Full"),  # none left
        (6, 5, "full", False, "Group Full"),  # over-filled by a late leave: still full
        (0, 2, "almost_full", True, "Join Group"),  # a 2-spot group starts almost full
        (1, 2, "almost_full", True, "Join Group"),
        (2, 2, "full", False, "Group Full"),
        (0, 3, "open", True, "Join Group"),
    ],
)
def test_group_status_by_spots_left(count, total, status, join_enabled, cta):
    card = cards.group_card(group_row(count, total), NOW)
    assert card["status"] == status
    assert card["join_enabled"] is join_enabled
    assert card["cta"] == {"label": cta, "enabled": join_enabled, "link": card["link"]}
    assert card["spots_left"] == max(0, total - count)
    assert card["progress_label"] == f"{min(count, total)}/{total} spots filled"


def test_group_expires_exactly_at_its_deadline():
    deadline = NOW
    just_before = cards.group_card(
        group_row(1, expires_at=deadline), NOW - timedelta(microseconds=1)
    )
    at = cards.group_card(group_row(1, expires_at=deadline), NOW)
    assert just_before["status"] == "open" and just_before["join_enabled"]
    assert just_before["time_remaining_label"] == "Less than a minute left"
    assert at["status"] == "expired" and not at["join_enabled"]
    assert at["cta"]["label"] == "Expired" and at["grayed_out"]
    assert at["seconds_remaining"] == 0 and at["time_remaining_label"] is None


def test_a_group_that_filled_stays_full_after_its_deadline():
    card = cards.group_card(group_row(5, 5, expires_at=NOW - timedelta(hours=1)), NOW)
    assert card["status"] == "full" and card["status_label"] == "Group Full"
    assert not card["grayed_out"]


def test_almost_full_group_expires_too():
    card = cards.group_card(group_row(4, 5, expires_at=NOW - timedelta(seconds=1)), NOW)
    assert card["status"] == "expired"


def test_cancelled_group_is_disabled_whatever_its_count():
    card = cards.group_card(group_row(1, state="cancelled"), NOW)
    assert card["status"] == "cancelled" and not card["join_enabled"] and card["grayed_out"]


def test_group_status_function_matches_the_card():
    assert (
        cards.group_status(participant_count=3, total_spots=5, expires_at=NOW, now=NOW) == "expired"
    )
    assert (
        cards.group_status(
            participant_count=3, total_spots=5, expires_at=NOW + timedelta(1), now=NOW
        )
        == "almost_full"
    )


def test_group_card_shows_savings_and_progress():
    card = cards.group_card(group_row(3, 5), NOW)
    assert card["label"] == "Buy Together 🤝"
    assert card["savings"]["amount"] == "100.00"
    assert card["savings_percent"] == 11
    assert card["price_label"] == "$800 (Save $100!)"
    assert card["target_price"]["formatted"] == "$800"
    assert card["product"]["name"] == "iPhone 15"
    assert card["product"]["image_url"] == "https://cdn.example.com/p.jpg"
    assert card["progress"] == 0.6
    assert card["time_remaining_label"] == "2 days left"  # exactly 48 hours
    assert card["spots_left_label"] == "2 spots left"
    assert card["link"] == f"/buy-together/groups/{card['id']}"


def test_no_savings_badge_without_a_discount():
    card = cards.group_card(group_row(1, target_price=Decimal("900")), NOW)
    assert card["savings"]["amount"] == "0.00" and card["price_label"] == "$900"


@pytest.mark.parametrize(
    "seconds, label",
    [
        (0, "Expired"),
        (-5, "Expired"),
        (1, "Less than a minute left"),
        (59, "Less than a minute left"),
        (60, "1 minute left"),
        (3599, "59 minutes left"),
        (3600, "1 hour left"),
        (86399, "23 hours left"),
        (86400, "24 hours left"),
        (2 * 86400 - 1, "47 hours left"),
        (2 * 86400, "2 days left"),
        (3 * 86400 - 1, "2 days left"),
    ],
)
def test_time_remaining_labels(seconds, label):
    assert cards.time_remaining_label(seconds) == label


# Products and shops -----------------------------------------------------------------------


def test_product_card_is_ready_to_draw():
    card = cards.product_card(product_row())
    assert card["image_url"] == "https://cdn.example.com/a.jpg"
    assert card["price"]["formatted"] == "$1,200" and card["price"]["amount"] == "1200.00"
    assert card["shop"]["name"] == "Acme" and card["shop"]["link"] == "/shops/acme"
    assert card["link"] == f"/products/{PRODUCT_ID}"
    assert card["cta"]["label"] == "View Product"


def test_product_without_images_has_no_image():
    assert cards.product_card(product_row(images=[]))["image_url"] is None


def test_shop_card_has_its_mention():
    card = cards.shop_card(
        {
            "id": uuid.uuid4(),
            "handle": "acme",
            "name": "Acme",
            "owner_id": uuid.uuid4(),
            "products_count": 3,
        }
    )
    assert card["mention"] == "$acme" and card["link"] == "/shops/acme"
    assert card["products_count"] == 3


# Installment plans ------------------------------------------------------------------------


def test_plan_card_labels_and_deep_link():
    row = plan_row(6, "99", "594", down="100")
    card = cards.plan_card(row)
    assert card["monthly_label"] == "$99/month"
    assert card["duration_label"] == "6 months"
    assert card["total_label"] == "$594 total" and card["total_differs_from_price"]
    assert card["interest_label"] == "0% interest"
    assert card["down_payment_label"] == "$100 down"
    assert card["badge"] == "Pay in installments 💳"
    assert card["link"] == f"/products/{PRODUCT_ID}?plan={row['id']}"
    assert card["cta"] == {"label": "Buy with Plan", "link": card["link"]}


def test_plan_with_interest_shows_apr_and_cost_of_credit():
    card = cards.plan_card(plan_row(12, "108.33", "1300", rate="5.25"))
    assert card["interest_label"] == "5.25% APR" and card["interest_rate"] == "5.25"
    assert card["cost_of_credit"]["formatted"] == "$100"
    no_extra = cards.plan_card(plan_row(3, "400", "1200"))
    assert no_extra["cost_of_credit"] is None and not no_extra["total_differs_from_price"]
    assert no_extra["down_payment"] is None and no_extra["duration_label"] == "3 months"
    assert cards.plan_card(plan_row(1, "1200", "1200"))["duration_label"] == "1 month"


def test_plan_comparison_is_side_by_side_and_marks_the_best():
    rows = [
        plan_row(12, "54.17", "650", rate="5"),
        plan_row(3, "200", "600"),
        plan_row(6, "100", "600"),
    ]
    comparison = cards.plan_comparison(product_row(), rows)
    assert [p["duration_months"] for p in comparison["plans"]] == [3, 6, 12]
    assert [p["monthly_label"] for p in comparison["plans"]] == [
        "$200/month",
        "$100/month",
        "$54.17/month",
    ]
    assert [p["total_label"] for p in comparison["plans"]] == ["$600 total"] * 2 + ["$650 total"]
    assert [p["interest_label"] for p in comparison["plans"]] == ["0% interest"] * 2 + ["5% APR"]
    assert comparison["lowest_monthly_plan_id"] == str(rows[0]["id"])
    assert comparison["lowest_total_plan_id"] == str(rows[1]["id"])
    assert all(p["cta"]["label"] == "Select" for p in comparison["plans"])
    assert all(p["link"].startswith(f"/products/{PRODUCT_ID}?plan=") for p in comparison["plans"])
    assert comparison["product"]["name"] == "Gaming Laptop"


# Events -----------------------------------------------------------------------------------


def event_row(**extra):
    return {
        "id": uuid.uuid4(),
        "title": "Spring Launch",
        "image_url": "https://cdn.example.com/e.jpg",
        "starts_at": datetime(2024, 3, 9, 18, 0, tzinfo=UTC),
        "ends_at": datetime(2024, 3, 9, 21, 0, tzinfo=UTC),
        "timezone": "Europe/Paris",
        "location_name": "Main Hall",
        "location_address": "1 Rue de Rivoli, Paris",
        "is_online": False,
        "ticket_status": "available",
        "price_min": Decimal("25"),
        "price_max": Decimal("80"),
        "currency": "EUR",
        **extra,
    }


def test_event_card_date_location_and_price_range():
    card = cards.event_card(event_row(), NOW)
    assert card["date_label"] == "Sat, Mar 9, 2024 · 7:00 PM CET"
    assert card["local_starts_at"] == "2024-03-09T19:00:00+01:00"
    assert card["location"]["label"] == "Main Hall, 1 Rue de Rivoli, Paris"
    assert card["price_range"]["label"] == "€25 – €80"
    assert card["phase"] == "upcoming" and card["tickets_available"]
    assert card["ticket_label"] == "Tickets available"


@pytest.mark.parametrize(
    "low, high, label",
    [
        ("0", "0", "Free"),
        ("30", "30", "$30"),
        ("0", "80", "Free – $80"),
        ("25", "80", "$25 – $80"),
        (None, "15", "$15"),
    ],
)
def test_price_range_labels(low, high, label):
    value = cards.price_range(Decimal(low) if low else None, Decimal(high) if high else None, "USD")
    assert value["label"] == label


def test_event_without_prices_has_no_price_range():
    assert cards.price_range(None, None, None) is None


@pytest.mark.parametrize(
    "now, phase, available, label",
    [
        (datetime(2024, 3, 9, 17, 59, tzinfo=UTC), "upcoming", True, "Tickets available"),
        (datetime(2024, 3, 9, 18, 0, tzinfo=UTC), "live", True, "Tickets available"),
        (datetime(2024, 3, 9, 21, 0, tzinfo=UTC), "live", True, "Tickets available"),
        (datetime(2024, 3, 9, 21, 0, 1, tzinfo=UTC), "ended", False, "Event ended"),
    ],
)
def test_event_phase_boundaries(now, phase, available, label):
    card = cards.event_card(event_row(), now)
    assert (card["phase"], card["tickets_available"], card["ticket_label"]) == (
        phase,
        available,
        label,
    )


@pytest.mark.parametrize(
    "status, available, label",
    [
        ("limited", True, "Few tickets left"),
        ("sold_out", False, "Sold out"),
        ("not_on_sale", False, "Tickets not on sale yet"),
        ("cancelled", False, "Event cancelled"),
    ],
)
def test_ticket_availability(status, available, label):
    card = cards.event_card(event_row(ticket_status=status), NOW)
    assert card["tickets_available"] is available and card["ticket_label"] == label


def test_online_event_location():
    card = cards.event_card(event_row(is_online=True, location_name=None), NOW)
    assert card["location"]["label"] == "Online"
