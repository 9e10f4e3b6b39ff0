"""HTTP routes of the messaging capability: conversations, messages, receipts, reactions,
search, forward, and product-context messaging ("Contact seller").

Every route is a thin wrapper of one action in server/domain/messaging/ (the gateway calls in
server/ws/methods/messaging.py wrap the same actions). Request bodies and queries are the
actions' command models (server/domain/messaging/commands.py), shared with the gateway; the
target's id comes from the path. The response models below document what the actions return.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from server.domain.messaging import (
    contact,
    conversations,
    edits,
    history,
    reactions,
    receipts,
    search,
    send,
)
from server.domain.messaging.commands import (
    ContactIn,
    ConversationListQuery,
    CreateConversationIn,
    DeleteQuery,
    EditIn,
    ForwardIn,
    MessageListQuery,
    MuteIn,
    ReactIn,
    SearchQuery,
    SendIn,
    UpToIn,
)
from server.http.endpoint import context, endpoint, path_id, principal

routes = web.RouteTableDef()
TAGS = ("messaging",)


# Response models -------------------------------------------------------------------------------


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class UserBrief(_Open):
    """The other participant, briefly."""

    id: uuid.UUID
    username: str
    display_name: str
    profile_picture_url: str | None
    is_verified: bool
    is_active: bool


class ReplyOut(BaseModel):
    """The message replied to, briefly."""

    id: uuid.UUID
    sender_id: uuid.UUID
    message_type: str
    content: str | None
    has_media: bool
    is_deleted: bool


class ReactionOut(BaseModel):
    """One emoji's reactions on a message (`me`: whether yours is one)."""

    emoji: str
    count: int
    user_ids: list[uuid.UUID]
    me: bool


class MediaOut(_Open):
    """An attachment."""

    id: uuid.UUID
    media_id: uuid.UUID | None = Field(None, description="The upload shown (GET /api/media/:id)")
    media_type: str
    media_url: str
    thumbnail_url: str | None
    file_name: str | None
    file_size: int | None


class MessageOut(BaseModel):
    """A message as you see it."""

    id: uuid.UUID
    conversation_id: uuid.UUID
    seq: int = Field(description="Position in the conversation (lists and events order by it)")
    sender_id: uuid.UUID
    message_type: Literal["text", "image", "video", "link", "product_context"]
    content: str | None = Field(description="null once deleted for everyone")
    links: list[str]
    product: dict[str, Any] | None = Field(description="The product card, as sent")
    product_id: uuid.UUID | None
    reply_to: ReplyOut | None
    is_forwarded: bool
    media: list[MediaOut]
    reactions: list[ReactionOut]
    is_edited: bool
    edited_at: datetime | None
    is_deleted: bool
    deleted_at: datetime | None
    created_at: datetime
    status: Literal["sent", "delivered", "read"] | None = Field(
        description="For your own messages: how far the other participant has got"
    )
    client_nonce: str | None


class ReceiptsOut(BaseModel):
    """How far the other participant has read and received."""

    user_id: uuid.UUID
    read_seq: int
    read_at: datetime | None
    delivered_seq: int
    delivered_at: datetime | None


class ConversationOut(_Open):
    """A conversation in your list: the other user, the last message you can see, your unread
    count and mute state."""

    id: uuid.UUID
    conversation_type: Literal["direct", "group"]
    other_user: UserBrief
    is_muted: bool
    muted_until: datetime | None
    unread_count: int
    marked_unread: bool
    last_read_seq: int
    last_read_at: datetime | None
    last_delivered_seq: int
    receipts: ReceiptsOut
    last_message: MessageOut | None
    last_message_at: datetime | None
    message_seq: int
    cleared_seq: int
    is_hidden: bool
    created_at: datetime
    updated_at: datetime


class ParticipantOut(UserBrief):
    """A participant with their read and delivery watermarks."""

    joined_at: datetime
    last_read_seq: int
    last_read_at: datetime | None
    last_delivered_seq: int
    delivered_at: datetime | None


class ProductBannerOut(_Open):
    """The product a conversation is about, shown above it: the live card (or the card as sent
    once the product is gone), the shop, the seller and quick links."""

    message_id: uuid.UUID
    conversation_id: uuid.UUID
    product_id: uuid.UUID | None
    product: dict[str, Any]
    shop: dict[str, Any] | None
    seller: dict[str, Any] | None
    is_removed: bool = Field(description="The product is gone: the card is as it was sent")
    links: dict[str, str | None]
    actions: list[dict[str, Any]]
    sent_at: datetime


class ConversationDetailOut(ConversationOut):
    """A conversation with its participants and product banner."""

    participants: list[ParticipantOut]
    product_context: ProductBannerOut | None


class CreatedConversationOut(ConversationDetailOut):
    """The conversation; `created` is false when it already existed."""

    created: bool


class ConversationPage(BaseModel):
    """A page of your conversations."""

    items: list[ConversationOut]
    next_cursor: str | None


class MessagePage(BaseModel):
    """A page of messages."""

    items: list[MessageOut]
    next_cursor: str | None
    has_more: bool | None = None


class SearchHit(BaseModel):
    """A message that matched, with its conversation."""

    conversation_id: uuid.UUID
    other_user: UserBrief
    message: MessageOut


class SearchPage(BaseModel):
    """A page of search results."""

    items: list[SearchHit]
    next_cursor: str | None


class ReactionsOut(BaseModel):
    """A message's reactions after the change."""

    message_id: uuid.UUID
    reactions: list[ReactionOut]


class ConversationReadOut(BaseModel):
    """Your read watermark after the change, and your unread count."""

    conversation_id: uuid.UUID
    user_id: uuid.UUID
    seq: int
    read_at: datetime | None
    unread_count: int
    marked_unread: bool


class DeliveredOut(BaseModel):
    """Your delivery watermark after the change."""

    conversation_id: uuid.UUID
    delivered_seq: int


class DeletedOut(BaseModel):
    """What was deleted, and for whom."""

    message_id: uuid.UUID
    scope: Literal["self", "everyone"]
    deleted: bool


class ContactOut(BaseModel):
    """The conversation with the seller and the message sent."""

    conversation: ConversationDetailOut
    message: MessageOut
    created: bool = Field(description="True when the conversation was opened by this contact")


# Conversations ---------------------------------------------------------------------------------


@routes.get("/api/conversations")
@endpoint(
    "Your conversations, latest message first, with the last message and unread count",
    query=ConversationListQuery,
    response=ConversationPage,
    tags=TAGS,
    errors=(422,),
    operation_id="conversations.list",
)
async def list_conversations(request: web.Request, query: ConversationListQuery) -> dict:
    """Each conversation comes with the last message you can see and your unread count.
    Conversations you deleted come back when a new message arrives."""
    return await conversations.list_conversations(context(request), principal(request), query)


@routes.post("/api/conversations")
@endpoint(
    "Open the conversation with a user (again: the existing one, created false)",
    body=CreateConversationIn,
    response=CreatedConversationOut,
    tags=TAGS,
    errors=(403, 404, 422),
    operation_id="conversations.create",
)
async def create_conversation(request: web.Request, body: CreateConversationIn) -> dict:
    """There is one conversation per pair of users: opening it again answers the existing one
    (`created` false). 403 when either of you blocked the other or they cannot be messaged."""
    return await conversations.create_conversation(context(request), principal(request), body)


@routes.get("/api/conversations/{id}")
@endpoint(
    "A conversation with its participants, receipts and product banner",
    response=ConversationDetailOut,
    tags=TAGS,
    errors=(404, 422),
    operation_id="conversations.get",
)
async def get_conversation(request: web.Request) -> dict:
    """The conversation as in your list, plus both participants with their read and delivery
    watermarks and, for a conversation about a product, the product banner."""
    return await conversations.get_conversation(
        context(request), principal(request), path_id(request)
    )


@routes.delete("/api/conversations/{id}")
@endpoint(
    "Delete the conversation for yourself (its history up to now; the other keeps theirs)",
    status=204,
    tags=TAGS,
    errors=(404, 422),
    operation_id="conversations.delete",
)
async def delete_conversation(request: web.Request) -> None:
    """The conversation's history up to now is gone for you and it leaves your list until a new
    message arrives; the other participant keeps everything."""
    await conversations.delete_conversation(context(request), principal(request), path_id(request))


@routes.post("/api/conversations/{id}/mute")
@endpoint(
    "Mute the conversation: messages still arrive, without notification or push",
    body=MuteIn,
    response=ConversationDetailOut,
    tags=TAGS,
    errors=(404, 422),
    operation_id="conversations.mute",
)
async def mute(request: web.Request, body: MuteIn) -> dict:
    """Mutes for `duration_s` seconds, or until unmuted. Messages of a muted conversation are
    still delivered live, but cause no notification and no push."""
    return await conversations.mute_conversation(
        context(request), principal(request), path_id(request), body
    )


@routes.delete("/api/conversations/{id}/unmute")
@endpoint(
    "Unmute the conversation",
    response=ConversationDetailOut,
    tags=TAGS,
    errors=(404, 422),
    operation_id="conversations.unmute",
)
async def unmute(request: web.Request) -> dict:
    """New messages notify and push again."""
    return await conversations.unmute_conversation(
        context(request), principal(request), path_id(request)
    )


@routes.post("/api/conversations/{id}/read")
@endpoint(
    "Mark read up to a message (default: all); the other participant gets a read receipt",
    body=UpToIn,
    response=ConversationReadOut,
    tags=TAGS,
    errors=(404, 422),
    operation_id="conversations.mark_read",
)
async def mark_read(request: web.Request, body: UpToIn) -> dict:
    """Marks read up to a message or seq (default: the latest). The other participant gets a
    read receipt (`conversation.read`) and your other devices the new unread count. Idempotent;
    the watermark never moves back."""
    return await receipts.mark_read(context(request), principal(request), path_id(request), body)


@routes.post("/api/conversations/{id}/unread")
@endpoint(
    "Mark the conversation unread for yourself",
    response=ConversationDetailOut,
    tags=TAGS,
    errors=(404, 422),
    operation_id="conversations.mark_unread",
)
async def mark_unread(request: web.Request) -> dict:
    """Flags the conversation unread for you; no read receipt is withdrawn."""
    return await conversations.mark_unread(context(request), principal(request), path_id(request))


@routes.post("/api/conversations/{id}/delivered")
@endpoint(
    "Acknowledge receipt of messages up to a message or seq (the sender sees 'delivered')",
    body=UpToIn,
    response=DeliveredOut,
    tags=TAGS,
    errors=(404, 422),
    operation_id="conversations.mark_delivered",
)
async def mark_delivered(request: web.Request, body: UpToIn) -> dict:
    """Your client acknowledges it has received messages up to a message or seq; the sender gets
    `message.delivered`. Idempotent and monotonic."""
    return await receipts.mark_delivered(
        context(request), principal(request), path_id(request), body
    )


@routes.get("/api/conversations/{id}/messages")
@endpoint(
    "Messages, newest first (cursor); with after_seq the newer ones, oldest first",
    query=MessageListQuery,
    response=MessagePage,
    tags=TAGS,
    errors=(404, 422),
    operation_id="messages.list",
)
async def list_messages(request: web.Request, query: MessageListQuery) -> dict:
    """The messages you can see, newest first (cursor); with `after_seq`, the ones after it oldest
    first, to catch up after being away. Fetching them counts as delivery."""
    return await history.list_messages(
        context(request), principal(request), path_id(request), query
    )


@routes.post("/api/conversations/{id}/messages")
@endpoint(
    "Send a message (text, link or product; optionally a reply); idempotent with a nonce",
    body=SendIn,
    response=MessageOut,
    status=201,
    tags=TAGS,
    errors=(403, 404, 409, 422),
    operation_id="messages.send",
)
async def send_message(request: web.Request, body: SendIn) -> dict:
    """A text or link message, or with `product_id` a product-context one; optionally a reply to
    a message of the same conversation. The other participant gets `message.created` live.
    With a `nonce`, a retry answers the original message instead of sending it twice."""
    return await send.send_message(context(request), principal(request), path_id(request), body)


# Messages (fixed paths before the {id} ones) -----------------------------------------------------


@routes.get("/api/messages/search")
@endpoint(
    "Full-text search of your messages (every word as a prefix), newest first",
    query=SearchQuery,
    response=SearchPage,
    tags=TAGS,
    errors=(404, 422),
    operation_id="messages.search",
)
async def search_messages(request: web.Request, query: SearchQuery) -> dict:
    """Every word matches as a prefix, over the messages you can see in your own conversations
    (optionally one); never a message you deleted, nor anything before a conversation
    delete."""
    return await search.search_messages(context(request), principal(request), query)


@routes.get("/api/messages/{id}")
@endpoint(
    "One message",
    response=MessageOut,
    tags=TAGS,
    errors=(404, 422),
    operation_id="messages.get",
)
async def get_message(request: web.Request) -> dict:
    """A message as you see it: its content (null once deleted for everyone), reply, reactions
    and, for your own, how far the other participant has got."""
    return await history.get_message(context(request), principal(request), path_id(request))


@routes.patch("/api/messages/{id}")
@endpoint(
    "Edit your message (within messaging.edit_window_s of sending it)",
    body=EditIn,
    response=MessageOut,
    tags=TAGS,
    errors=(403, 404, 422),
    operation_id="messages.edit",
)
async def edit_message(request: web.Request, body: EditIn) -> dict:
    """Edits only your own messages, within `messaging.edit_window_s` of sending them (403
    after); the other participant sees the edit live."""
    return await edits.edit_message(context(request), principal(request), path_id(request), body)


@routes.delete("/api/messages/{id}")
@endpoint(
    "Delete a message for yourself (scope=self) or, as its sender, for everyone",
    query=DeleteQuery,
    response=DeletedOut,
    tags=TAGS,
    errors=(403, 404, 422),
    operation_id="messages.delete",
)
async def delete_message(request: web.Request, query: DeleteQuery) -> dict:
    """With scope=self it disappears for you only; with scope=everyone (its sender only) it is
    retracted for both, leaving a "This message was deleted" tombstone."""
    return await edits.delete_message(context(request), principal(request), path_id(request), query)


@routes.post("/api/messages/{id}/reactions")
@endpoint(
    "React with an emoji (once per emoji; again is a no-op)",
    body=ReactIn,
    response=ReactionsOut,
    tags=TAGS,
    errors=(403, 404, 422),
    operation_id="messages.add_reaction",
)
async def add_reaction(request: web.Request, body: ReactIn) -> dict:
    """One reaction per message, user and emoji: reacting again with it is a no-op."""
    return await reactions.add_reaction(
        context(request), principal(request), path_id(request), body
    )


@routes.delete("/api/messages/{id}/reactions/{emoji}")
@endpoint(
    "Remove your reaction",
    response=ReactionsOut,
    tags=TAGS,
    errors=(404, 422),
    path_params={"emoji": "The emoji or :shortcode: to remove (URL-encoded)"},
    operation_id="messages.remove_reaction",
)
async def remove_reaction(request: web.Request) -> dict:
    """Removes your reaction with this emoji, if any."""
    return await reactions.remove_reaction(
        context(request), principal(request), path_id(request), request.match_info["emoji"]
    )


@routes.post("/api/messages/{id}/forward")
@endpoint(
    "Forward a message you can see to one of your conversations",
    body=ForwardIn,
    response=MessageOut,
    status=201,
    tags=TAGS,
    errors=(403, 404, 409, 422),
    operation_id="messages.forward",
)
async def forward_message(request: web.Request, body: ForwardIn) -> dict:
    """Sends a copy, marked forwarded, to one of your conversations; its original sender is not
    revealed."""
    return await send.forward_message(context(request), principal(request), path_id(request), body)


@routes.get("/api/messages/{id}/product-context")
@endpoint(
    "The product a message is about (its banner: live card, shop, seller, quick links)",
    response=ProductBannerOut,
    tags=TAGS,
    errors=(404, 422),
    operation_id="messages.product_context",
)
async def product_context(request: web.Request) -> dict:
    """For a product-context message, its product; for any other, the product banner in effect
    at that message (the latest product-context message before it). 404 when there is
    none."""
    return await contact.product_context(context(request), principal(request), path_id(request))


# Product-context messaging ----------------------------------------------------------------------


@routes.post("/api/products/{id}/contact")
@endpoint(
    "Contact seller: open (or reuse) the conversation with the product's owner and send a "
    "product-context message",
    body=ContactIn,
    response=ContactOut,
    status=201,
    tags=TAGS,
    errors=(403, 404, 409, 422),
    operation_id="products.contact_seller",
)
async def contact_seller(request: web.Request, body: ContactIn) -> dict:
    """Opens (or reuses) the conversation with the product's owner and sends a product-context
    message, by default "Hi, I'm interested in <name>. Is this still available?"; the
    conversation then shows the product banner."""
    return await contact.contact_seller(
        context(request), principal(request), path_id(request), body
    )
