"""HTTP routes of the messaging capability: conversations, messages, receipts, reactions,
search, forward, and product-context messaging ("Contact seller").

Every route is a thin wrapper of one action in server.domain.messaging (the gateway calls in
server/ws/methods/messaging.py wrap the same actions).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, model_validator

from server.domain import messaging
from server.errors import ValidationFailed
from server.http.endpoint import context, endpoint, path_id, principal
from server.pagination import PageQuery

routes = web.RouteTableDef()
TAGS = ("messaging",)

MAX_TEXT = 100_000  # a sanity bound; the real limit is messaging.max_message_chars (422)


# Request models --------------------------------------------------------------------------------


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CreateConversationIn(_In):
    user_id: uuid.UUID | None = Field(None, description="The other user (or give username)")
    username: str | None = Field(None, min_length=1, max_length=64)

    @model_validator(mode="after")
    def _one_of(self) -> CreateConversationIn:
        if (self.user_id is None) == (self.username is None):
            raise ValueError("give exactly one of user_id or username")
        return self


class SendIn(_In):
    content: str = Field(max_length=MAX_TEXT)
    message_type: Literal["text", "link", "image", "video", "product_context"] | None = Field(
        None, description="text or link (default: link when the text holds a URL)"
    )
    reply_to_message_id: uuid.UUID | None = None
    product_id: uuid.UUID | None = Field(None, description="Makes it a product-context message")
    nonce: str | None = Field(
        None,
        min_length=1,
        max_length=messaging.NONCE_MAX_CHARS,
        description="Client idempotency key: a resend with it returns the original message",
    )


class EditIn(_In):
    content: str = Field(max_length=MAX_TEXT)


class ReactIn(_In):
    emoji: str = Field(min_length=1, max_length=64, description="An emoji or a :shortcode:")


class UpToIn(_In):
    message_id: uuid.UUID | None = Field(None, description="Up to this message")
    seq: int | None = Field(None, ge=0, description="Up to this seq (default: the latest)")


class MuteIn(_In):
    duration_s: int | None = Field(
        None, ge=60, le=10 * 365 * 86400, description="Mute for this long (default: until unmuted)"
    )


class ForwardIn(_In):
    conversation_id: uuid.UUID
    nonce: str | None = Field(None, min_length=1, max_length=messaging.NONCE_MAX_CHARS)


class ContactIn(_In):
    text: str | None = Field(
        None,
        max_length=MAX_TEXT,
        description="Your message (default: \"Hi, I'm interested in <name>. Is this still "
        'available?")',
    )
    nonce: str | None = Field(None, min_length=1, max_length=messaging.NONCE_MAX_CHARS)


class MessageListQuery(PageQuery):
    after_seq: int | None = Field(
        None, ge=0, description="Catch up: the messages after this seq, oldest first"
    )


class DeleteQuery(BaseModel):
    scope: Literal["self", "everyone"] = Field(
        "self", description="self: hide it for you; everyone: the sender retracts it"
    )


class SearchQuery(PageQuery):
    q: str = Field(min_length=1, max_length=200)
    conversation_id: uuid.UUID | None = None


# Response models -------------------------------------------------------------------------------


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class UserBrief(_Open):
    id: uuid.UUID
    username: str
    display_name: str
    profile_picture_url: str | None
    is_verified: bool
    is_active: bool


class ReplyOut(BaseModel):
    id: uuid.UUID
    sender_id: uuid.UUID
    message_type: str
    content: str | None
    has_media: bool
    is_deleted: bool


class ReactionOut(BaseModel):
    emoji: str
    count: int
    user_ids: list[uuid.UUID]
    me: bool


class MediaOut(_Open):
    id: uuid.UUID
    media_type: str
    media_url: str
    thumbnail_url: str | None
    file_name: str | None
    file_size: int | None


class MessageOut(BaseModel):
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
    user_id: uuid.UUID
    read_seq: int
    read_at: datetime | None
    delivered_seq: int
    delivered_at: datetime | None


class ConversationOut(_Open):
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
    joined_at: datetime
    last_read_seq: int
    last_read_at: datetime | None
    last_delivered_seq: int
    delivered_at: datetime | None


class ProductBannerOut(_Open):
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
    participants: list[ParticipantOut]
    product_context: ProductBannerOut | None


class CreatedConversationOut(ConversationDetailOut):
    created: bool


class ConversationPage(BaseModel):
    items: list[ConversationOut]
    next_cursor: str | None


class MessagePage(BaseModel):
    items: list[MessageOut]
    next_cursor: str | None
    has_more: bool | None = None


class SearchHit(BaseModel):
    conversation_id: uuid.UUID
    other_user: UserBrief
    message: MessageOut


class SearchPage(BaseModel):
    items: list[SearchHit]
    next_cursor: str | None


class ReactionsOut(BaseModel):
    message_id: uuid.UUID
    reactions: list[ReactionOut]


class ReadOut(BaseModel):
    conversation_id: uuid.UUID
    user_id: uuid.UUID
    seq: int
    read_at: datetime | None
    unread_count: int
    marked_unread: bool


class DeliveredOut(BaseModel):
    conversation_id: uuid.UUID
    delivered_seq: int


class DeletedOut(BaseModel):
    message_id: uuid.UUID
    scope: Literal["self", "everyone"]
    deleted: bool


class ContactOut(BaseModel):
    conversation: ConversationDetailOut
    message: MessageOut
    created: bool = Field(description="True when the conversation was opened by this contact")


# Conversations ---------------------------------------------------------------------------------


@routes.get("/api/conversations")
@endpoint(
    "Your conversations, latest message first, with the last message and unread count",
    query=PageQuery,
    response=ConversationPage,
    tags=TAGS,
    errors=(422,),
)
async def list_conversations(request: web.Request, query: PageQuery) -> dict:
    return await messaging.list_conversations(
        context(request), principal(request), limit=query.limit, cursor=query.cursor
    )


@routes.post("/api/conversations")
@endpoint(
    "Open the conversation with a user (again: the existing one, created false)",
    body=CreateConversationIn,
    response=CreatedConversationOut,
    tags=TAGS,
    errors=(403, 404, 422),
)
async def create_conversation(request: web.Request, body: CreateConversationIn) -> dict:
    return await messaging.create_conversation(
        context(request), principal(request), user_id=body.user_id, username=body.username
    )


@routes.get("/api/conversations/{id}")
@endpoint(
    "A conversation with its participants, receipts and product banner",
    response=ConversationDetailOut,
    tags=TAGS,
    errors=(404, 422),
)
async def get_conversation(request: web.Request) -> dict:
    return await messaging.get_conversation(context(request), principal(request), path_id(request))


@routes.delete("/api/conversations/{id}")
@endpoint(
    "Delete the conversation for yourself (its history up to now; the other keeps theirs)",
    status=204,
    tags=TAGS,
    errors=(404, 422),
)
async def delete_conversation(request: web.Request) -> None:
    await messaging.delete_conversation(context(request), principal(request), path_id(request))


@routes.post("/api/conversations/{id}/mute")
@endpoint(
    "Mute the conversation: messages still arrive, without notification or push",
    body=MuteIn,
    response=ConversationDetailOut,
    tags=TAGS,
    errors=(404, 422),
)
async def mute(request: web.Request, body: MuteIn) -> dict:
    return await messaging.set_muted(
        context(request), principal(request), path_id(request), True, duration_s=body.duration_s
    )


@routes.delete("/api/conversations/{id}/unmute")
@endpoint("Unmute the conversation", response=ConversationDetailOut, tags=TAGS, errors=(404, 422))
async def unmute(request: web.Request) -> dict:
    return await messaging.set_muted(context(request), principal(request), path_id(request), False)


@routes.post("/api/conversations/{id}/read")
@endpoint(
    "Mark read up to a message (default: all); the other participant gets a read receipt",
    body=UpToIn,
    response=ReadOut,
    tags=TAGS,
    errors=(404, 422),
)
async def mark_read(request: web.Request, body: UpToIn) -> dict:
    return await messaging.mark_read(
        context(request),
        principal(request),
        path_id(request),
        message_id=body.message_id,
        seq=body.seq,
    )


@routes.post("/api/conversations/{id}/unread")
@endpoint(
    "Mark the conversation unread for yourself",
    response=ConversationDetailOut,
    tags=TAGS,
    errors=(404, 422),
)
async def mark_unread(request: web.Request) -> dict:
    return await messaging.mark_unread(context(request), principal(request), path_id(request))


@routes.post("/api/conversations/{id}/delivered")
@endpoint(
    "Acknowledge receipt of messages up to a message or seq (the sender sees 'delivered')",
    body=UpToIn,
    response=DeliveredOut,
    tags=TAGS,
    errors=(404, 422),
)
async def mark_delivered(request: web.Request, body: UpToIn) -> dict:
    return await messaging.mark_delivered(
        context(request),
        principal(request),
        path_id(request),
        message_id=body.message_id,
        seq=body.seq,
    )


@routes.get("/api/conversations/{id}/messages")
@endpoint(
    "Messages, newest first (cursor); with after_seq the newer ones, oldest first",
    query=MessageListQuery,
    response=MessagePage,
    tags=TAGS,
    errors=(404, 422),
)
async def list_messages(request: web.Request, query: MessageListQuery) -> dict:
    return await messaging.list_messages(
        context(request),
        principal(request),
        path_id(request),
        limit=query.limit,
        cursor=query.cursor,
        after_seq=query.after_seq,
    )


@routes.post("/api/conversations/{id}/messages")
@endpoint(
    "Send a message (text, link or product; optionally a reply); idempotent with a nonce",
    body=SendIn,
    response=MessageOut,
    status=201,
    tags=TAGS,
    errors=(403, 404, 409, 422),
)
async def send_message(request: web.Request, body: SendIn) -> dict:
    if body.product_id is None and body.message_type == "product_context":
        raise ValidationFailed.field("message_type", "send a product_id for a product message")
    return await messaging.send_message(
        context(request),
        principal(request),
        path_id(request),
        content=body.content,
        message_type=None if body.product_id is not None else body.message_type,
        reply_to=body.reply_to_message_id,
        product_id=body.product_id,
        nonce=body.nonce,
    )


# Messages (fixed paths before the {id} ones) -----------------------------------------------------


@routes.get("/api/messages/search")
@endpoint(
    "Full-text search of your messages (every word as a prefix), newest first",
    query=SearchQuery,
    response=SearchPage,
    tags=TAGS,
    errors=(404, 422),
)
async def search_messages(request: web.Request, query: SearchQuery) -> dict:
    return await messaging.search_messages(
        context(request),
        principal(request),
        q=query.q,
        conversation_id=query.conversation_id,
        limit=query.limit,
        cursor=query.cursor,
    )


@routes.get("/api/messages/{id}")
@endpoint("One message", response=MessageOut, tags=TAGS, errors=(404, 422))
async def get_message(request: web.Request) -> dict:
    return await messaging.get_message(context(request), principal(request), path_id(request))


@routes.patch("/api/messages/{id}")
@endpoint(
    "Edit your message (within messaging.edit_window_s of sending it)",
    body=EditIn,
    response=MessageOut,
    tags=TAGS,
    errors=(403, 404, 422),
)
async def edit_message(request: web.Request, body: EditIn) -> dict:
    return await messaging.edit_message(
        context(request), principal(request), path_id(request), content=body.content
    )


@routes.delete("/api/messages/{id}")
@endpoint(
    "Delete a message for yourself (scope=self) or, as its sender, for everyone",
    query=DeleteQuery,
    response=DeletedOut,
    tags=TAGS,
    errors=(403, 404, 422),
)
async def delete_message(request: web.Request, query: DeleteQuery) -> dict:
    return await messaging.delete_message(
        context(request), principal(request), path_id(request), scope=query.scope
    )


@routes.post("/api/messages/{id}/reactions")
@endpoint(
    "React with an emoji (once per emoji; again is a no-op)",
    body=ReactIn,
    response=ReactionsOut,
    tags=TAGS,
    errors=(403, 404, 422),
)
async def add_reaction(request: web.Request, body: ReactIn) -> dict:
    return await messaging.add_reaction(
        context(request), principal(request), path_id(request), body.emoji
    )


@routes.delete("/api/messages/{id}/reactions/{emoji}")
@endpoint("Remove your reaction", response=ReactionsOut, tags=TAGS, errors=(404, 422))
async def remove_reaction(request: web.Request) -> dict:
    return await messaging.remove_reaction(
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
)
async def forward_message(request: web.Request, body: ForwardIn) -> dict:
    return await messaging.forward_message(
        context(request),
        principal(request),
        path_id(request),
        conversation_id=body.conversation_id,
        nonce=body.nonce,
    )


@routes.get("/api/messages/{id}/product-context")
@endpoint(
    "The product a message is about (its banner: live card, shop, seller, quick links)",
    response=ProductBannerOut,
    tags=TAGS,
    errors=(404, 422),
)
async def product_context(request: web.Request) -> dict:
    return await messaging.product_context(context(request), principal(request), path_id(request))


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
)
async def contact_seller(request: web.Request, body: ContactIn) -> dict:
    return await messaging.contact_seller(
        context(request), principal(request), path_id(request), text=body.text, nonce=body.nonce
    )
