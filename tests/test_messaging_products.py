"""Product-context messaging end to end: "Contact seller" opens or reuses the conversation with
the product's owner, sends the product message, notifies the seller, and the conversation keeps
its product banner (live card, shop, seller, quick links) even after the product is gone."""

from __future__ import annotations

import pytest

from tests.helpers import expect_problem
from tests.messaging_support import (
    MESSAGING_SETTINGS,
    block,
    conversation,
    conversations,
    gateway,
    messages,
    next_of,
    nonce,
    notifications_of,
    open_dm,
    send,
)

pytestmark = pytest.mark.app_settings(**MESSAGING_SETTINGS)


@pytest.fixture
async def laptop(commerce, bob):
    """bob sells a laptop in his shop: (shop_id, product_id)."""
    shop_id = await commerce.shop(bob.id, "bobs_gadgets", name="Bob's Gadgets")
    product_id = await commerce.product(shop_id, "Gaming Laptop", price="1200.00")
    return shop_id, product_id


async def contact(client, user, product_id, **body):
    resp = await client.post(f"/api/products/{product_id}/contact", json=body, headers=user.auth)
    assert resp.status == 201, await resp.text()
    return await resp.json()


async def test_contact_seller_opens_the_conversation_with_a_product_message(
    client, alice, bob, laptop
):
    _shop_id, product_id = laptop
    result = await contact(client, alice, product_id)
    assert result["created"] is True
    message = result["message"]
    assert message["message_type"] == "product_context"
    assert message["content"] == "Hi, I'm interested in Gaming Laptop. Is this still available?"
    assert message["product_id"] == product_id
    assert message["product"]["name"] == "Gaming Laptop"
    assert message["product"]["price"]["formatted"] == "$1,200"
    conv = result["conversation"]
    assert conv["other_user"]["username"] == "bob"
    banner = conv["product_context"]
    assert banner["message_id"] == message["id"] and banner["is_removed"] is False
    assert banner["product"]["image_url"] == f"https://cdn.example.com/{product_id}.jpg"
    assert banner["product"]["price"]["amount"] == "1200.00"
    assert banner["shop"]["name"] == "Bob's Gadgets"
    assert banner["seller"]["username"] == "bob"
    assert banner["links"] == {
        "product": f"/products/{product_id}",
        "shop": "/shops/bobs_gadgets",
        "seller": "/users/bob",
    }
    assert [a["kind"] for a in banner["actions"]] == ["view_product", "visit_shop", "view_seller"]
    # The seller sees it in their list, banner and all, and is notified about the product.
    listed = (await conversations(client, bob))["items"]
    assert listed[0]["id"] == conv["id"] and listed[0]["unread_count"] == 1
    assert (await conversation(client, bob, conv["id"]))["product_context"]["product"]["id"] == (
        product_id
    )
    notes = await notifications_of(client, bob)
    assert [n["type"] for n in notes] == ["product_message"]
    assert notes[0]["content"] == "@alice messaged you about Gaming Laptop"
    assert notes[0]["entity_id"] == conv["id"]


async def test_contact_again_reuses_the_conversation_and_keeps_custom_text(
    client, alice, bob, commerce, laptop
):
    shop_id, product_id = laptop
    cid = await open_dm(client, alice, bob)
    await send(client, alice, cid, "hey bob")
    result = await contact(client, alice, product_id, text="Would you take $1,000?")
    assert result["created"] is False and result["conversation"]["id"] == cid
    assert result["message"]["content"] == "Would you take $1,000?"
    phone_id = await commerce.product(shop_id, "Phone", price="499.99")
    again = await contact(client, alice, phone_id)
    assert again["conversation"]["id"] == cid
    # The banner follows the latest product talked about; each message keeps its own product.
    assert again["conversation"]["product_context"]["product"]["name"] == "Phone"
    assert [
        m["product"]["name"] if m["product"] else None
        for m in (await messages(client, bob, cid))["items"]
    ] == ["Phone", "Gaming Laptop", None]


async def test_product_context_of_any_message_is_the_banner_in_effect(
    client, alice, bob, commerce, laptop
):
    shop_id, product_id = laptop
    cid = await open_dm(client, alice, bob)
    before = await send(client, alice, cid, "hello before any product")
    first = (await contact(client, alice, product_id))["message"]
    reply = await send(client, bob, cid, "Yes, still available!")
    resp = await client.get(f"/api/messages/{reply['id']}/product-context", headers=alice.auth)
    assert resp.status == 200
    ctx = await resp.json()
    assert ctx["message_id"] == first["id"] and ctx["product"]["name"] == "Gaming Laptop"
    # The live card: a price change shows.
    await commerce.product(shop_id, "Gaming Laptop", price="999.00", id=product_id)
    resp = await client.get(f"/api/messages/{first['id']}/product-context", headers=bob.auth)
    assert (await resp.json())["product"]["price"]["formatted"] == "$999"
    # A message from before any product talk has no product context.
    resp = await client.get(f"/api/messages/{before['id']}/product-context", headers=bob.auth)
    assert "no product context" in (await expect_problem(resp, 404))["detail"]


async def test_banner_outlives_a_deleted_product(client, alice, bob, commerce, laptop):
    _shop_id, product_id = laptop
    result = await contact(client, alice, product_id)
    await commerce.delete(f"/products/{product_id}")
    resp = await client.get(
        f"/api/messages/{result['message']['id']}/product-context", headers=alice.auth
    )
    banner = await resp.json()
    assert banner["is_removed"] is True and banner["product"]["is_available"] is False
    assert banner["product"]["name"] == "Gaming Laptop" and banner["seller"]["username"] == "bob"
    listed = (await messages(client, bob, result["conversation"]["id"]))["items"]
    assert listed[0]["product"]["name"] == "Gaming Laptop"


async def test_contact_rules(client, alice, bob, laptop, make_user):
    _shop_id, product_id = laptop
    resp = await client.post(f"/api/products/{product_id}/contact", json={}, headers=bob.auth)
    assert "your own product" in (await expect_problem(resp, 422))["detail"]
    resp = await client.post(
        "/api/products/0190a1b2-0000-7000-8000-000000000000/contact", json={}, headers=alice.auth
    )
    await expect_problem(resp, 404)
    # A product of someone who blocked you is not there for you.
    carol = await make_user("carol")
    await block(client, bob, carol)
    resp = await client.post(f"/api/products/{product_id}/contact", json={}, headers=carol.auth)
    await expect_problem(resp, 404)
    key = nonce()
    first = await contact(client, alice, product_id, nonce=key)
    again = await contact(client, alice, product_id, nonce=key)
    assert again["message"]["id"] == first["message"]["id"]
    assert len((await messages(client, bob, first["conversation"]["id"]))["items"]) == 1
    resp = await client.get(
        f"/api/messages/{first['message']['id']}/product-context", headers=carol.auth
    )
    await expect_problem(resp, 404)


async def test_sharing_and_forwarding_a_product_in_a_conversation(
    client, alice, bob, laptop, make_user
):
    _shop_id, product_id = laptop
    carol = await make_user("carol")
    cid = await open_dm(client, alice, carol)
    shared = await send(client, alice, cid, "look at this one", product_id=product_id)
    assert shared["message_type"] == "product_context"
    assert shared["product"]["name"] == "Gaming Laptop"
    assert (await conversation(client, carol, cid))["product_context"]["message_id"] == shared["id"]
    # Product messages between buyers notify as product messages too.
    assert [n["type"] for n in await notifications_of(client, carol)] == ["product_message"]
    other = await open_dm(client, carol, bob)
    resp = await client.post(
        f"/api/messages/{shared['id']}/forward", json={"conversation_id": other}, headers=carol.auth
    )
    fwd = await resp.json()
    assert fwd["is_forwarded"] and fwd["product"]["name"] == "Gaming Laptop"
    resp = await client.post(
        f"/api/conversations/{cid}/messages",
        json={"content": "x", "product_id": "0190a1b2-0000-7000-8000-000000000000"},
        headers=alice.auth,
    )
    await expect_problem(resp, 422)


async def test_contact_over_the_gateway_reaches_the_seller_live(client, alice, bob, laptop):
    _shop_id, product_id = laptop
    seller = await gateway(client, bob)
    buyer = await gateway(client, alice)
    try:
        result = await buyer.call("products.contact", product_id=product_id)
        assert result["message"]["message_type"] == "product_context"
        event = await next_of(seller, "message.created")
        assert event.data["message"]["product"]["name"] == "Gaming Laptop"
        assert event.data["conversation_id"] == result["conversation"]["id"]
        ctx = await seller.call("messages.product_context", message_id=result["message"]["id"])
        assert ctx["seller"]["username"] == "bob" and ctx["is_removed"] is False
        note = await next_of(seller, "notification.created")
        assert note.data["notification"]["type"] == "product_message"
    finally:
        await seller.close()
        await buyer.close()
