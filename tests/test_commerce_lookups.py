"""The look-ups the post-creation flows call, through HTTP: product / event / shop search,
"my active groups", a product's installment plans and their comparison, entity reads."""

from __future__ import annotations

from datetime import timedelta

import psycopg2
import pytest

from server.ids import new_id
from tests.commerce_support import (
    COMMERCE_SETTINGS,
    iso,
    now,
    random_id,
)
from tests.helpers import expect_problem

pytestmark = pytest.mark.app_settings(**COMMERCE_SETTINGS)


async def get(client, who, path, **params):
    resp = await client.get(path, headers=who.auth, params=params or None)
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def collect(client, who, path, limit=1, **params):
    """Walk every page; return the items in order."""
    items, cursor, pages = [], None, 0
    while True:
        query = {**params, "limit": str(limit)}
        if cursor:
            query["cursor"] = cursor
        body = await get(client, who, path, **query)
        items += body["items"]
        cursor = body["next_cursor"]
        pages += 1
        assert pages < 50
        if not cursor:
            return items


# Products ---------------------------------------------------------------------------------


async def test_product_search_is_full_text_prefix_and_keyset_paginated(client, commerce, alice):
    shop = await commerce.shop(alice.id, "acme")
    other = await commerce.shop(alice.id, "gadgets")
    laptop = await commerce.product(shop, "Gaming Laptop", "1200.00")
    stand = await commerce.product(other, "Laptop Stand", "40.00")
    await commerce.product(shop, "Phone Case", "15.00")
    desc = await commerce.product(shop, "Backpack", "60.00", description="fits a 17in laptop")

    found = await collect(client, alice, "/api/products/search", q="lap")
    ids = [p["id"] for p in found]
    assert set(ids) == {laptop, stand, desc}
    assert len(ids) == len(set(ids))  # keyset pages never repeat
    assert ids[-1] == desc  # a description match ranks below name matches

    both_words = await get(client, alice, "/api/products/search", q="gaming LAP")
    assert [p["id"] for p in both_words["items"]] == [laptop]
    card = both_words["items"][0]
    assert card["price"]["formatted"] == "$1,200" and card["shop"]["name"] == "Acme"
    assert set(card) >= {"id", "name", "image_url", "price", "shop", "link"}

    everything = await collect(client, alice, "/api/products/search", limit=2)
    assert len(everything) == 4 and everything[0]["name"] == "Backpack"  # newest first

    in_shop = await get(client, alice, "/api/products/search", shop_id=other)
    assert [p["id"] for p in in_shop["items"]] == [stand]

    nothing = await get(client, alice, "/api/products/search", q="&|!:*()")
    assert len(nothing["items"]) == 4  # punctuation only: no query, not an SQL error


async def test_search_needs_a_user_and_rejects_forged_cursors(client, commerce, alice):
    await expect_problem(await client.get("/api/products/search"), 401)
    for cursor in (
        "garbage",
        "WzEuMGUzMDAsIngiXQ",
        "WzFlMzAwLCIwMTkwMDAwMC0wMDAwLTcwMDAtODAwMC0wMDAwMDAwMDAwMDEiXQ",
    ):
        resp = await client.get(
            "/api/products/search", params={"q": "x", "cursor": cursor}, headers=alice.auth
        )
        await expect_problem(resp, 422)


async def test_blocked_sellers_products_are_absent(client, commerce, alice, bob):
    shop = await commerce.shop(alice.id, "acme")
    pid = await commerce.product(shop, "Laptop")
    assert len((await get(client, bob, "/api/products/search", q="laptop"))["items"]) == 1
    assert (await client.post("/api/users/alice/block", headers=bob.auth)).status == 204
    assert (await get(client, bob, "/api/products/search", q="laptop"))["items"] == []
    await expect_problem(await client.get(f"/api/products/{pid}", headers=bob.auth), 404)
    await expect_problem(await client.get("/api/shops/acme", headers=bob.auth), 404)
    assert (await client.get(f"/api/products/{pid}", headers=alice.auth)).status == 200


async def test_product_read_has_fields_and_card(client, commerce, alice):
    shop = await commerce.shop(alice.id, "acme")
    pid = await commerce.product(shop, "Laptop", "999.99", description="Fast")
    body = await get(client, alice, f"/api/products/{pid}")
    assert body["name"] == "Laptop" and body["description"] == "Fast"
    assert body["price"] == "999.9900" or body["price"] == "999.99"
    assert body["shop_name"] == "Acme" and body["owner_id"] == alice.id
    assert body["card"]["price"]["formatted"] == "$999.99"
    await expect_problem(await client.get(f"/api/products/{new_id()}", headers=alice.auth), 404)
    await expect_problem(await client.get("/api/products/nope", headers=alice.auth), 422)


# Shops ------------------------------------------------------------------------------------


async def test_shop_by_handle_or_id_and_search(client, commerce, alice):
    shop = await commerce.shop(alice.id, "acme_tech", name="Acme Technology")
    await commerce.product(shop, "Laptop")
    by_handle = await get(client, alice, "/api/shops/acme_tech")
    by_id = await get(client, alice, f"/api/shops/{shop}")
    assert by_handle["id"] == by_id["id"] == shop
    assert by_handle["products_count"] == 1
    assert by_handle["card"]["name"] == "Acme Technology"
    found = await get(client, alice, "/api/shops/search", q="acme")
    assert [s["handle"] for s in found["items"]] == ["acme_tech"]
    await expect_problem(await client.get("/api/shops/nobody", headers=alice.auth), 404)


# Events -----------------------------------------------------------------------------------


async def test_event_search_upcoming_soonest_first_and_full_text(client, commerce, alice):
    later = await commerce.event("Jazz Night", starts_in=timedelta(days=20))
    soon = await commerce.event("Spring Product Launch", starts_in=timedelta(days=2))
    live = await commerce.event(
        "Launch Party Live", starts_in=timedelta(hours=-1), ends_at=iso(now() + timedelta(hours=2))
    )
    past = await commerce.event(
        "Old Launch", starts_in=timedelta(days=-10), ends_at=iso(now() - timedelta(days=9))
    )
    upcoming = await collect(client, alice, "/api/events/search")
    assert [e["id"] for e in upcoming] == [live, soon, later]
    assert upcoming[0]["phase"] == "live"

    launches = await collect(client, alice, "/api/events/search", q="launch")
    assert {e["id"] for e in launches} == {soon, live}
    with_past = await collect(client, alice, "/api/events/search", q="launch", include_past="true")
    assert {e["id"] for e in with_past} == {soon, live, past}

    card = (await get(client, alice, f"/api/events/{soon}"))["card"]
    assert card["price_range"]["label"] == "$25 – $80"
    assert card["ticket_label"] == "Tickets available" and card["location"]["name"] == "Main Hall"


# Buy-together groups ----------------------------------------------------------------------


async def _groups_at_each_status(commerce, owner, member, other):
    shop = await commerce.shop(owner.id, "acme")
    pid = await commerce.product(shop, "iPhone 15", "900.00")
    groups = {
        "open": await commerce.group(pid, owner.id, spots=5, target="800.00"),
        "almost_full": await commerce.group(pid, other.id, spots=3),
        "full": await commerce.group(pid, owner.id, spots=2),
        "expired": await commerce.group(pid, owner.id, expires_in=timedelta(minutes=-5)),
        "cancelled": await commerce.group(pid, owner.id, state="cancelled"),
    }
    await commerce.join(groups["almost_full"], member.id)  # member joined someone else's group
    await commerce.join(groups["full"], owner.id)
    await commerce.join(groups["full"], member.id)
    return groups


async def test_my_groups_by_status(client, commerce, alice, bob, make_user):
    carol = await make_user("carol")
    groups = await _groups_at_each_status(commerce, alice, bob, carol)
    active = await collect(
        client, alice, "/api/buy-together/groups", status="active", user=alice.id
    )
    assert {g["id"] for g in active} == {groups["open"]}

    # bob created none but joined two; "active" is what he may still link (joinable groups).
    bobs = await get(client, bob, "/api/buy-together/groups", status="active", user=bob.id)
    assert [g["id"] for g in bobs["items"]] == [groups["almost_full"]]
    assert bobs["items"][0]["viewer_joined"] is True
    assert bobs["items"][0]["status"] == "almost_full"

    for status, group_id in groups.items():
        if status == "almost_full":
            continue
        listed = await get(client, alice, "/api/buy-together/groups", status=status)
        assert [g["id"] for g in listed["items"]] == [group_id], status
        assert listed["items"][0]["status"] == status  # SQL filter and card agree
    every = await collect(client, alice, "/api/buy-together/groups", status="any", limit=2)
    assert len(every) == 4


async def test_group_cards_through_http(client, commerce, alice, bob, make_user):
    carol = await make_user("carol")
    groups = await _groups_at_each_status(commerce, alice, bob, carol)
    full = (await get(client, bob, f"/api/buy-together/groups/{groups['full']}"))["card"]
    assert full["status"] == "full" and full["join_enabled"] is False
    assert full["cta"]["label"] == "Group Full" and full["progress_label"] == "2/2 spots filled"
    expired = (await get(client, bob, f"/api/buy-together/groups/{groups['expired']}"))["card"]
    assert expired["status"] == "expired" and expired["grayed_out"]
    open_ = (await get(client, bob, f"/api/buy-together/groups/{groups['open']}"))["card"]
    assert open_["price_label"] == "$800 (Save $100!)" and open_["join_enabled"]
    assert open_["individual_price"]["amount"] == "900.00"  # defaulted to the product price


async def test_listing_someone_elses_groups_is_forbidden(client, alice, bob):
    resp = await client.get("/api/buy-together/groups", params={"user": alice.id}, headers=bob.auth)
    await expect_problem(resp, 403)
    bad = await client.get("/api/buy-together/groups", params={"status": "weird"}, headers=bob.auth)
    assert "status" in (await expect_problem(bad, 422))["errors"]


# Installment plans ------------------------------------------------------------------------


async def test_installment_plans_and_comparison(client, commerce, alice):
    shop = await commerce.shop(alice.id, "acme")
    pid = await commerce.product(shop, "Gaming Laptop", "1200.00")
    p12 = await commerce.plan(pid, 12, "108.34", "1300.00", interest_rate="5")
    p3 = await commerce.plan(pid, 3, "400.00", "1200.00")
    p6 = await commerce.plan(pid, 6, "200.00", "1200.00")
    listed = await collect(client, alice, f"/api/products/{pid}/installment-plans")
    assert [p["id"] for p in listed] == [p3, p6, p12]
    assert [p["monthly_label"] for p in listed] == ["$400/month", "$200/month", "$108.34/month"]
    assert listed[2]["interest_label"] == "5% APR" and listed[0]["interest_label"] == "0% interest"

    compared = await get(
        client, alice, f"/api/products/{pid}/installment-plans/compare", plans=f"{p12},{p6}"
    )
    assert [p["id"] for p in compared["plans"]] == [p6, p12]
    assert compared["plans"][0]["link"] == f"/products/{pid}?plan={p6}"
    assert compared["lowest_monthly_plan_id"] == p12 and compared["lowest_total_plan_id"] == p6

    plan = await get(client, alice, f"/api/installment-plans/{p6}")
    assert plan["card"]["cta"] == {"label": "Buy with Plan", "link": f"/products/{pid}?plan={p6}"}

    other = await commerce.product(shop, "Mouse", "20.00")
    foreign = await commerce.plan(other, 2, "10.00", "20.00")
    resp = await client.get(
        f"/api/products/{pid}/installment-plans/compare",
        params={"plans": f"{p3},{foreign}"},
        headers=alice.auth,
    )
    assert "plans" in (await expect_problem(resp, 422))["errors"]
    missing = await client.get(f"/api/products/{new_id()}/installment-plans", headers=alice.auth)
    await expect_problem(missing, 404)


async def test_plan_currency_follows_the_product(commerce, alice):
    shop = await commerce.shop(alice.id, "acme")
    pid = await commerce.product(shop, "Laptop", "1200.00")
    bad = await commerce.put(
        f"/installment-plans/{new_id()}",
        {
            "product_id": pid,
            "duration_months": 3,
            "monthly_amount": "400",
            "total_cost": "1200",
            "currency": "EUR",
            "updated_at": iso(now()),
        },
        expect=422,
    )
    assert "currency" in bad["errors"]
    unknown = await commerce.put(
        f"/installment-plans/{new_id()}",
        {
            "product_id": random_id(),
            "duration_months": 3,
            "monthly_amount": "400",
            "total_cost": "1200",
            "updated_at": iso(now()),
        },
        expect=422,
    )
    assert "product_id" in unknown["errors"]


# Query plans ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sql, index",
    [
        (
            """SELECT id FROM products p, to_tsquery('simple', 'lap:*') tsq
               WHERE p.search @@ tsq ORDER BY ts_rank(p.search, tsq) DESC, id DESC LIMIT 21""",
            "products_search_idx",
        ),
        (
            """SELECT id FROM commerce_events e, to_tsquery('simple', 'jazz:*') tsq
               WHERE e.search @@ tsq LIMIT 21""",
            "commerce_events_search_idx",
        ),
        (
            """SELECT id FROM commerce_events e
               WHERE e.starts_at >= now() - interval '366 days'
                 AND coalesce(e.ends_at, e.starts_at) >= now()
               ORDER BY e.starts_at, e.id LIMIT 21""",
            "commerce_events_starts_idx",
        ),
        (
            "SELECT min(expires_at) FROM buy_together_groups WHERE NOT expiry_announced",
            "buy_together_groups_expiry_idx",
        ),
        (
            """SELECT id FROM installment_plans WHERE product_id = gen_random_uuid()
               ORDER BY duration_months, id LIMIT 21""",
            "installment_plans_product_idx",
        ),
    ],
)
def test_lookups_are_index_backed(settings, sql, index):
    conn = psycopg2.connect(settings.database.url)
    try:
        with conn.cursor() as cur:
            cur.execute("SET enable_seqscan = off")
            cur.execute("EXPLAIN " + sql)
            plan = "\n".join(row[0] for row in cur.fetchall())
    finally:
        conn.close()
    assert index in plan, plan
