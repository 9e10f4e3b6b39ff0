"""Product context: "Contact seller", and the product banner a message is under.

A product-context message keeps the product card as sent, so a conversation's banner (its
latest product message) outlives a deleted product (`is_removed: true`). A product the viewer
cannot see (missing, or across a block with its owner) is 404; their own product is 422.
"""

from __future__ import annotations

import uuid
from typing import Any

from server.domain.access import access_conversation, access_message, check_can_message_user
from server.domain.auth_tokens import Principal
from server.domain.context import Context
from server.domain.messaging.commands import ContactIn
from server.domain.messaging.content import check_content, check_nonce
from server.domain.messaging.conversations import get_conversation
from server.domain.messaging.send import append_message, replay
from server.domain.messaging.views import product_banner, product_snapshot
from server.domain.notification_catalog import preview
from server.errors import NotFound, ValidationFailed
from server.store import commerce as commerce_store
from server.store import conversations as conversations_store
from server.store import messaging as store

DEFAULT_CONTACT_TEXT = "Hi, I'm interested in {name}. Is this still available?"


async def contact_seller(
    ctx: Context, actor: Principal, product_id: uuid.UUID, command: ContactIn
) -> dict[str, Any]:
    """ "Contact seller": open (or reuse) the one conversation with the product's owner and send
    a product-context message, by default "Hi, I'm interested in <name>. Is this still
    available?". The conversation then shows the product banner."""
    nonce = check_nonce(command.nonce)
    product = await commerce_store.get_product(ctx.db, product_id, actor.user_id)
    if product is None:
        raise NotFound("No such product.")
    seller_id = product["owner_id"]
    if seller_id == actor.user_id:
        raise ValidationFailed.field("id", "this is your own product")
    text = command.text
    if text is not None and text.strip():
        content = check_content(ctx, text)
    else:
        name = preview(product["name"], 200)
        content = check_content(ctx, DEFAULT_CONTACT_TEXT.format(name=name))
    if nonce is not None:
        existing = await store.find_by_nonce(ctx.db, actor.user_id, nonce)
        if existing is not None:
            message = await replay(ctx, actor, None, existing)
            conversation = await get_conversation(ctx, actor, existing["conversation_id"])
            return {"conversation": conversation, "message": message, "created": False}
    seller = await store.user_brief(ctx.db, seller_id)
    await check_can_message_user(ctx, ctx.db, actor, seller)
    assert seller is not None
    low, high = sorted((actor.user_id, seller_id))
    existing_id = await conversations_store.find_direct(ctx.db, low, high)
    message, conversation_id = await append_message(
        ctx,
        actor,
        existing_id,
        content=content,
        message_type="product_context",
        product_id=product_id,
        snapshot=product_snapshot(product, seller),
        nonce=nonce,
        open_with=seller_id,
    )
    conversation = await get_conversation(ctx, actor, conversation_id)
    return {"conversation": conversation, "message": message, "created": existing_id is None}


async def product_context(ctx: Context, actor: Principal, message_id: uuid.UUID) -> dict[str, Any]:
    """The product a message is about: its own product for a product-context message, else the
    product banner in effect at that message (the latest product-context message before it)."""
    row = await access_message(ctx, ctx.db, actor, message_id)
    banner = row if row["product_snapshot"] is not None else None
    if banner is None:
        c = await access_conversation(ctx, ctx.db, actor, row["conversation_id"])
        banner = await store.product_context_message(
            ctx.db, row["conversation_id"], actor.user_id, c["cleared_seq"], row["seq"]
        )
    if banner is None:
        raise NotFound("This message has no product context.")
    return await product_banner(
        ctx, actor.user_id, {**banner, "conversation_id": row["conversation_id"]}
    )
