"""The commerce ingest API: service-token auth, idempotent versioned upserts and deletes,
participation changes, and malformed payloads that write nothing."""

from __future__ import annotations

import asyncio
import random
from datetime import timedelta

import pytest

from server.app import create_app
from server.ids import new_id
from tests.commerce_support import (
    BASE,
    COMMERCE_SETTINGS,
    SERVICE,
    iso,
    now,
    random_id,
)
from tests.helpers import expect_problem, make_settings

pytestmark = pytest.mark.app_settings(**COMMERCE_SETTINGS)

SHOP_BODY = {"handle": "acme", "name": "Acme", "updated_at": "2024-01-01T00:00:00Z"}


# Authentication ---------------------------------------------------------------------------


async def test_ingest_requires_the_service_token(client, alice):
    path = f"{BASE}/shops/{new_id()}"
    body = {**SHOP_BODY, "owner_id": alice.id}
    missing = await expect_problem(await client.put(path, json=body), 401)
    assert "X-Service-Token" in missing["detail"]
    wrong = await client.put(path, json=body, headers={"X-Service-Token": "nope"})
    await expect_problem(wrong, 401)
    # A user's access token is never a way in, even alongside the right service token.
    as_user = await client.put(path, json=body, headers=alice.auth)
    assert "service token" in (await expect_problem(as_user, 403))["detail"]
    both = await client.put(path, json=body, headers={**alice.auth, **SERVICE})
    await expect_problem(both, 403)
    ok = await client.put(path, json=body, headers=SERVICE)
    assert ok.status == 200 and (await ok.json())["outcome"] == "created"


async def test_auth_is_checked_before_the_body(client):
    resp = await client.put(f"{BASE}/products/{new_id()}", data=b"{not json")
    await expect_problem(resp, 401)


async def test_empty_token_config_disables_ingest(aiohttp_client, clean_db, tmp_path, make_user):
    app = create_app(make_settings(clean_db, tmp_path, commerce={"service_token": ""}))
    client = await aiohttp_client(app)
    resp = await client.put(
        f"{BASE}/shops/{new_id()}", json=SHOP_BODY, headers={"X-Service-Token": "anything"}
    )
    body = await expect_problem(resp, 503)
    assert "disabled" in body["detail"] and "service_token" in body["detail"]


async def test_several_tokens_allow_rotation(aiohttp_client, clean_db, tmp_path):
    app = create_app(make_settings(clean_db, tmp_path, commerce={"service_token": "old1, new2"}))
    client = await aiohttp_client(app)
    for token in ("old1", "new2"):
        resp = await client.delete(f"{BASE}/shops/{new_id()}", headers={"X-Service-Token": token})
        assert resp.status == 200


async def test_openapi_documents_the_service_token_scheme(client):
    doc = await (await client.get("/api/openapi.json")).json()
    scheme = doc["components"]["securitySchemes"]["serviceToken"]
    assert scheme == {**scheme, "type": "apiKey", "in": "header", "name": "X-Service-Token"}
    op = doc["paths"]["/api/internal/commerce/products/{id}"]["put"]
    assert op["security"] == [{"serviceToken": []}]
    assert doc["paths"]["/api/products/search"]["get"]["security"] == [{"bearer": []}]


# Versioned upserts ------------------------------------------------------------------------


async def test_upsert_creates_updates_and_ignores_stale_and_duplicate(client, commerce, alice):
    shop = await commerce.shop(alice.id, "acme")
    pid = str(new_id())
    t0 = now()
    body = {"shop_id": shop, "name": "Laptop", "price": "1200.00", "currency": "usd"}
    first = await commerce.put(f"/products/{pid}", {**body, "updated_at": iso(t0)})
    assert first["applied"] and first["outcome"] == "created"

    newer = await commerce.put(
        f"/products/{pid}", {**body, "name": "Gaming Laptop", "updated_at": iso(t0 + timedelta(1))}
    )
    assert newer["applied"] and newer["outcome"] == "updated"

    # Delivered late: older than what is stored. Ignored, and said so.
    stale = await commerce.put(
        f"/products/{pid}", {**body, "name": "Old name", "updated_at": iso(t0)}
    )
    assert stale["applied"] is False and stale["outcome"] == "stale"
    assert stale["version"].startswith(iso(t0 + timedelta(1))[:19])

    again = await commerce.put(
        f"/products/{pid}", {**body, "name": "Gaming Laptop", "updated_at": iso(t0 + timedelta(1))}
    )
    assert again["applied"] is False and again["outcome"] == "duplicate"

    card = (await (await client.get(f"/api/products/{pid}", headers=alice.auth)).json())["card"]
    assert card["name"] == "Gaming Laptop"
    assert card["price"] == {
        "amount": "1200.00",
        "currency": "USD",
        "minor_units": 120000,
        "formatted": "$1,200",
    }
    assert card["shop"]["name"] == "Acme" and card["link"] == f"/products/{pid}"


async def test_delete_is_idempotent_and_a_late_older_upsert_does_not_resurrect(
    client, commerce, alice
):
    shop = await commerce.shop(alice.id, "acme")
    t0 = now()
    pid = await commerce.product(shop, "Phone", updated_at=iso(t0))
    gone = await commerce.delete(f"/products/{pid}", t0 + timedelta(seconds=5))
    assert gone["applied"] and gone["outcome"] == "deleted"
    assert (await commerce.delete(f"/products/{pid}", t0 + timedelta(seconds=6)))[
        "outcome"
    ] == "absent"

    late = await commerce.put(
        f"/products/{pid}",
        {
            "shop_id": shop,
            "name": "Phone v2",
            "price": "9",
            "currency": "USD",
            "updated_at": iso(t0 + timedelta(seconds=3)),
        },
    )
    assert late["applied"] is False and late["outcome"] == "deleted_newer"
    await expect_problem(await client.get(f"/api/products/{pid}", headers=alice.auth), 404)

    # A genuinely newer version re-creates it.
    back = await commerce.put(
        f"/products/{pid}",
        {
            "shop_id": shop,
            "name": "Phone v3",
            "price": "9",
            "currency": "USD",
            "updated_at": iso(t0 + timedelta(minutes=1)),
        },
    )
    assert back["outcome"] == "created"
    assert (await client.get(f"/api/products/{pid}", headers=alice.auth)).status == 200


async def test_delete_before_create_wins_over_the_older_create(client, commerce, alice):
    shop = await commerce.shop(alice.id, "acme")
    pid = str(new_id())
    t0 = now()
    absent = await commerce.delete(f"/products/{pid}", t0)
    assert absent["outcome"] == "absent" and absent["applied"]
    created_late = await commerce.put(
        f"/products/{pid}",
        {
            "shop_id": shop,
            "name": "X",
            "price": "1",
            "currency": "USD",
            "updated_at": iso(t0 - timedelta(seconds=1)),
        },
    )
    assert created_late["outcome"] == "deleted_newer"


async def test_a_stale_delete_is_ignored(client, commerce, alice):
    shop = await commerce.shop(alice.id, "acme", updated_at=iso(now()))
    stale = await commerce.delete(f"/shops/{shop}", now() - timedelta(hours=1))
    assert stale["applied"] is False and stale["outcome"] == "stale"
    assert (await client.get("/api/shops/acme", headers=alice.auth)).status == 200


async def test_deleting_a_shop_removes_its_catalog(client, commerce, alice, bob):
    shop = await commerce.shop(alice.id, "acme")
    pid = await commerce.product(shop, "Phone")
    plan = await commerce.plan(pid, 3, "33.34", "100.00")
    group = await commerce.group(pid, bob.id)
    await commerce.delete(f"/shops/{shop}")
    for path in (
        f"/api/products/{pid}",
        f"/api/installment-plans/{plan}",
        f"/api/buy-together/groups/{group}",
        "/api/shops/acme",
    ):
        await expect_problem(await client.get(path, headers=alice.auth), 404)
    # An older update of a cascaded product does not bring it back.
    late = await commerce.put(
        f"/products/{pid}",
        {
            "shop_id": shop,
            "name": "Phone",
            "price": "1",
            "currency": "USD",
            "updated_at": iso(now() - timedelta(minutes=5)),
        },
    )
    assert late["outcome"] == "deleted_newer"


async def test_shop_handles_are_unique_and_normalised(client, commerce, alice, bob):
    await commerce.shop(alice.id, "$Acme_Store")
    shop = await (await client.get("/api/shops/$acme_store", headers=alice.auth)).json()
    assert shop["handle"] == "acme_store" and shop["card"]["mention"] == "$acme_store"
    taken = await commerce.put(
        f"/shops/{new_id()}",
        {"handle": "ACME_STORE", "name": "Other", "owner_id": bob.id, "updated_at": iso(now())},
        expect=409,
    )
    assert "handle" in taken["errors"]


# Malformed payloads -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "patch, field",
    [
        ({"price": "-1"}, "price"),
        ({"price": "12.345"}, "price"),  # USD has 2 decimals
        ({"price": "abc"}, "price"),
        ({"price": 0.1 + 0.2}, "price"),  # a float that is not an exact decimal
        ({"currency": "XYZ"}, "currency"),
        ({"name": ""}, "name"),
        ({"images": ["javascript:alert(1)"]}, "images.0"),
        ({"updated_at": "2024-01-01T00:00:00"}, "updated_at"),  # no offset
        ({"updated_at": None}, "updated_at"),
        ({"shop_id": "not-a-uuid"}, "shop_id"),
        ({"id": "00000000-0000-0000-0000-000000000000"}, "id"),
    ],
)
async def test_bad_product_payloads_name_the_field_and_write_nothing(
    client, commerce, alice, patch, field
):
    shop = await commerce.shop(alice.id, "acme")
    pid = str(new_id())
    body = {
        "shop_id": shop,
        "name": "Phone",
        "price": "10.00",
        "currency": "USD",
        "updated_at": iso(now()),
        **patch,
    }
    problem = await commerce.put(f"/products/{pid}", body, expect=422)
    assert field in problem["errors"], problem
    await expect_problem(await client.get(f"/api/products/{pid}", headers=alice.auth), 404)


async def test_zero_decimal_currencies_are_checked_per_currency(commerce, alice):
    shop = await commerce.shop(alice.id, "tokyo")
    ok = await commerce.put(
        f"/products/{new_id()}",
        {
            "shop_id": shop,
            "name": "Tea",
            "price": "1500",
            "currency": "JPY",
            "updated_at": iso(now()),
        },
    )
    assert ok["applied"]
    bad = await commerce.put(
        f"/products/{new_id()}",
        {
            "shop_id": shop,
            "name": "Tea",
            "price": "1500.5",
            "currency": "JPY",
            "updated_at": iso(now()),
        },
        expect=422,
    )
    assert "price" in bad["errors"]


async def test_unknown_references_are_422_with_their_own_problem_type(client, commerce, alice):
    missing_shop = await commerce.put(
        f"/products/{new_id()}",
        {
            "shop_id": random_id(),
            "name": "X",
            "price": "1",
            "currency": "USD",
            "updated_at": iso(now()),
        },
        expect=422,
    )
    assert "shop_id" in missing_shop["errors"]
    assert missing_shop["type"].endswith("/unknown_reference")
    ghost_owner = await commerce.put(
        f"/shops/{new_id()}",
        {"handle": "ghost", "name": "Ghost", "owner_id": random_id(), "updated_at": iso(now())},
        expect=422,
    )
    assert "owner_id" in ghost_owner["errors"]
    await expect_problem(await client.get("/api/shops/ghost", headers=alice.auth), 404)


async def test_group_payload_rules(commerce, alice):
    shop = await commerce.shop(alice.id, "acme")
    pid = await commerce.product(shop, "Phone", price="900.00")
    base = {
        "product_id": pid,
        "creator_id": alice.id,
        "total_spots": 5,
        "expires_at": iso(now() + timedelta(days=1)),
        "updated_at": iso(now()),
    }
    too_dear = await commerce.put(
        f"/groups/{new_id()}", {**base, "target_price": "950.00"}, expect=422
    )
    assert "target_price" in too_dear["errors"]
    one_spot = await commerce.put(
        f"/groups/{new_id()}", {**base, "target_price": "800", "total_spots": 1}, expect=422
    )
    assert "total_spots" in one_spot["errors"]
    other_currency = await commerce.put(
        f"/groups/{new_id()}", {**base, "target_price": "800", "currency": "EUR"}, expect=422
    )
    assert "currency" in other_currency["errors"]


async def test_event_payload_rules(commerce):
    start = now() + timedelta(days=3)
    base = {"title": "Launch", "starts_at": iso(start), "updated_at": iso(now())}
    backwards = await commerce.put(
        f"/events/{new_id()}", {**base, "ends_at": iso(start - timedelta(hours=1))}, expect=422
    )
    assert "ends_at" in backwards["errors"]
    no_currency = await commerce.put(f"/events/{new_id()}", {**base, "price_min": "5"}, expect=422)
    assert "currency" in no_currency["errors"]
    bad_zone = await commerce.put(
        f"/events/{new_id()}", {**base, "timezone": "Mars/Base"}, expect=422
    )
    assert "timezone" in bad_zone["errors"]
    bad_status = await commerce.put(
        f"/events/{new_id()}", {**base, "ticket_status": "maybe"}, expect=422
    )
    assert "ticket_status" in bad_status["errors"]


async def test_unknown_fields_are_ignored_for_forward_compatibility(commerce, alice):
    shop_id = str(new_id())
    result = await commerce.put(
        f"/shops/{shop_id}",
        {
            "handle": "acme",
            "name": "Acme",
            "owner_id": alice.id,
            "updated_at": iso(now()),
            "rating": 4.9,
        },
    )
    assert result["applied"]


# Participation ----------------------------------------------------------------------------


async def test_join_and_leave_are_idempotent_and_versioned(client, commerce, alice, bob):
    shop = await commerce.shop(alice.id, "acme")
    pid = await commerce.product(shop, "Phone", price="900.00")
    group = await commerce.group(pid, alice.id, spots=4, target="800.00")
    t0 = now()
    joined = await commerce.join(group, bob.id, t0)
    assert joined["outcome"] == "joined" and joined["group"]["participants"] == 1
    twice = await commerce.join(group, bob.id, t0)
    assert twice["applied"] is False and twice["outcome"] == "duplicate"
    rejoin = await commerce.join(group, bob.id, t0 + timedelta(seconds=1))
    assert rejoin["outcome"] == "unchanged" and rejoin["group"]["participants"] == 1

    left = await commerce.leave(group, bob.id, t0 + timedelta(seconds=10))
    assert left["outcome"] == "left" and left["group"]["participants"] == 0
    # The join that was sent before the leave arrives after it: it must not undo the leave.
    late_join = await commerce.join(group, bob.id, t0 + timedelta(seconds=5))
    assert late_join["outcome"] == "stale"
    view = await (await client.get(f"/api/buy-together/groups/{group}", headers=bob.auth)).json()
    assert view["participant_count"] == 0 and view["card"]["viewer_joined"] is False


async def test_participation_references_must_exist(commerce, alice):
    shop = await commerce.shop(alice.id, "acme")
    pid = await commerce.product(shop, "Phone")
    group = await commerce.group(pid, alice.id)
    unknown_user = await commerce.put(
        f"/groups/{group}/participants/{random_id()}", {"updated_at": iso(now())}, expect=422
    )
    assert "user_id" in unknown_user["errors"]
    unknown_group = await commerce.put(
        f"/groups/{random_id()}/participants/{alice.id}", {"updated_at": iso(now())}, expect=422
    )
    assert "group_id" in unknown_group["errors"]
    # Leaving something unknown is simply nothing to do.
    assert (await commerce.leave(random_id(), alice.id))["outcome"] == "absent"


# Concurrency ------------------------------------------------------------------------------


async def test_concurrent_deliveries_converge_on_the_newest_version(client, commerce, alice):
    shop = await commerce.shop(alice.id, "acme")
    pid = str(new_id())
    t0 = now()
    versions = list(range(12))
    random.Random(5).shuffle(versions)

    async def deliver(n: int) -> dict:
        body = {
            "shop_id": shop,
            "name": f"v{n}",
            "price": f"{n}.00",
            "currency": "USD",
            "updated_at": iso(t0 + timedelta(seconds=n)),
        }
        return await commerce.put(f"/products/{pid}", body)

    results = await asyncio.gather(*(deliver(n) for n in versions))
    assert sum(r["outcome"] == "created" for r in results) == 1
    product = await (await client.get(f"/api/products/{pid}", headers=alice.auth)).json()
    assert product["name"] == "v11" and product["card"]["price"]["amount"] == "11.00"


async def test_concurrent_joins_are_all_counted(client, commerce, alice, make_user):
    shop = await commerce.shop(alice.id, "acme")
    pid = await commerce.product(shop, "Phone")
    group = await commerce.group(pid, alice.id, spots=20)
    users = [await make_user(f"buyer_{i}") for i in range(8)]
    await asyncio.gather(*(commerce.join(group, u.id) for u in users))
    await asyncio.gather(*(commerce.join(group, u.id) for u in users[:3]))  # redeliveries
    view = await (await client.get(f"/api/buy-together/groups/{group}", headers=alice.auth)).json()
    assert view["participant_count"] == 8 and view["card"]["progress_label"] == "8/20 spots filled"


async def test_delete_version_may_come_unencoded(client, commerce, alice):
    shop = await commerce.shop(alice.id, "acme", updated_at="2024-01-01T12:00:00+02:00")
    raw = f"{BASE}/shops/{shop}?updated_at=2024-01-01T09:00:00+02:00"  # '+' arrives as ' '
    stale = await (await client.delete(raw, headers=SERVICE)).json()
    assert stale["outcome"] == "stale"
    bad = await client.delete(f"{BASE}/shops/{shop}?updated_at=yesterday", headers=SERVICE)
    assert "updated_at" in (await expect_problem(bad, 422))["errors"]


async def test_times_outside_readable_years_are_422_and_lists_keep_working(client, commerce, alice):
    """A year PostgreSQL stores but Python cannot read back once would 500 every list."""
    shop = await commerce.shop(alice.id, "acme")
    pid = await commerce.product(shop, "Phone", price="900.00")
    gid = await commerce.group(pid, alice.id)
    for extreme in ("9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00"):
        bad_event = await commerce.put(
            f"/events/{new_id()}",
            {"title": "Far", "starts_at": extreme, "updated_at": iso(now())},
            expect=422,
        )
        assert "starts_at" in bad_event["errors"]
        bad_group = await commerce.put(
            f"/groups/{new_id()}",
            {
                "product_id": pid,
                "creator_id": alice.id,
                "target_price": "800",
                "total_spots": 3,
                "expires_at": extreme,
                "updated_at": iso(now()),
            },
            expect=422,
        )
        assert "expires_at" in bad_group["errors"]
        bad_join = await commerce.put(
            f"/groups/{gid}/participants/{alice.id}", {"updated_at": extreme}, expect=422
        )
        assert "updated_at" in bad_join["errors"]
        resp = await client.delete(
            f"{BASE}/groups/{gid}/participants/{alice.id}",
            params={"updated_at": extreme},
            headers=SERVICE,
        )
        await expect_problem(resp, 422)
    for path in ("/api/events/search?include_past=true", "/api/buy-together/groups?status=any"):
        resp = await client.get(path, headers=alice.auth)
        assert resp.status == 200, await resp.text()
