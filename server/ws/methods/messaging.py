"""Gateway calls of the messaging capability: the same domain actions as the HTTP routes
(server/http/messaging.py), as `call {method, params}` on the socket.

Results are what the matching HTTP route returns. Events (message.created, message.updated,
message.deleted, message.delivered, conversation.read, conversation.updated,
conversation.created, conversation.deleted, reaction.added, reaction.removed, typing) are
listed in protocol/PROTOCOL.md.
"""

from __future__ import annotations

import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from server.domain import messaging
from server.domain.auth_tokens import Principal
from server.domain.context import Context
from server.pagination import DEFAULT_LIMIT, MAX_LIMIT
from server.ws.calls import call

MAX_TEXT = 100_000


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        if isinstance(value, str) and "\x00" in value:
            raise ValueError("may not contain NUL characters")
        return value


class _Page(_Params):
    limit: int = Field(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT)
    cursor: str | None = Field(None, max_length=512)


class ConversationRef(_Params):
    conversation_id: uuid.UUID


class CreateParams(_Params):
    user_id: uuid.UUID | None = None
    username: str | None = Field(None, min_length=1, max_length=64)

    @model_validator(mode="after")
    def _one_of(self) -> CreateParams:
        if (self.user_id is None) == (self.username is None):
            raise ValueError("give exactly one of user_id or username")
        return self


class MuteParams(ConversationRef):
    duration_s: int | None = Field(None, ge=60, le=10 * 365 * 86400)


class UpToParams(ConversationRef):
    message_id: uuid.UUID | None = None
    seq: int | None = Field(None, ge=0)


class MessagesParams(_Page, ConversationRef):
    after_seq: int | None = Field(None, ge=0)


class SendParams(ConversationRef):
    content: str = Field(max_length=MAX_TEXT)
    message_type: Literal["text", "link", "image", "video"] | None = None
    reply_to_message_id: uuid.UUID | None = None
    product_id: uuid.UUID | None = None
    nonce: str | None = Field(None, min_length=1, max_length=messaging.NONCE_MAX_CHARS)


class MessageRef(_Params):
    message_id: uuid.UUID


class EditParams(MessageRef):
    content: str = Field(max_length=MAX_TEXT)


class DeleteParams(MessageRef):
    scope: Literal["self", "everyone"] = "self"


class ReactParams(MessageRef):
    emoji: str = Field(min_length=1, max_length=64)


class ForwardParams(MessageRef):
    conversation_id: uuid.UUID
    nonce: str | None = Field(None, min_length=1, max_length=messaging.NONCE_MAX_CHARS)


class TypingParams(ConversationRef):
    pass


class SearchParams(_Page):
    q: str = Field(min_length=1, max_length=200)
    conversation_id: uuid.UUID | None = None


class ContactParams(_Params):
    product_id: uuid.UUID
    text: str | None = Field(None, max_length=MAX_TEXT)
    nonce: str | None = Field(None, min_length=1, max_length=messaging.NONCE_MAX_CHARS)


# Conversations ---------------------------------------------------------------------------------


@call("conversations.list", params=_Page)
async def conversations_list(ctx: Context, principal: Principal, p: _Page) -> dict:
    """Your conversations, latest message first (as GET /api/conversations)."""
    return await messaging.list_conversations(ctx, principal, limit=p.limit, cursor=p.cursor)


@call("conversations.create", params=CreateParams)
async def conversations_create(ctx: Context, principal: Principal, p: CreateParams) -> dict:
    """Open the conversation with a user (again: the existing one, `created` false)."""
    return await messaging.create_conversation(
        ctx, principal, user_id=p.user_id, username=p.username
    )


@call("conversations.get", params=ConversationRef)
async def conversations_get(ctx: Context, principal: Principal, p: ConversationRef) -> dict:
    return await messaging.get_conversation(ctx, principal, p.conversation_id)


@call("conversations.delete", params=ConversationRef)
async def conversations_delete(ctx: Context, principal: Principal, p: ConversationRef) -> dict:
    """Delete the conversation for yourself (history up to now)."""
    await messaging.delete_conversation(ctx, principal, p.conversation_id)
    return {"conversation_id": p.conversation_id, "deleted": True}


@call("conversations.mute", params=MuteParams)
async def conversations_mute(ctx: Context, principal: Principal, p: MuteParams) -> dict:
    return await messaging.set_muted(
        ctx, principal, p.conversation_id, True, duration_s=p.duration_s
    )


@call("conversations.unmute", params=ConversationRef)
async def conversations_unmute(ctx: Context, principal: Principal, p: ConversationRef) -> dict:
    return await messaging.set_muted(ctx, principal, p.conversation_id, False)


@call("conversations.read", params=UpToParams)
async def conversations_read(ctx: Context, principal: Principal, p: UpToParams) -> dict:
    """Mark read up to a message / seq (default: all); sends the read receipt."""
    return await messaging.mark_read(
        ctx, principal, p.conversation_id, message_id=p.message_id, seq=p.seq
    )


@call("conversations.mark_unread", params=ConversationRef)
async def conversations_mark_unread(ctx: Context, principal: Principal, p: ConversationRef):
    return await messaging.mark_unread(ctx, principal, p.conversation_id)


# Messages --------------------------------------------------------------------------------------


@call("messages.list", params=MessagesParams)
async def messages_list(ctx: Context, principal: Principal, p: MessagesParams) -> dict:
    return await messaging.list_messages(
        ctx,
        principal,
        p.conversation_id,
        limit=p.limit,
        cursor=p.cursor,
        after_seq=p.after_seq,
    )


@call("messages.send", params=SendParams)
async def messages_send(ctx: Context, principal: Principal, p: SendParams) -> dict:
    """Send a message; with `nonce`, a resend returns the original instead of a duplicate."""
    return await messaging.send_message(
        ctx,
        principal,
        p.conversation_id,
        content=p.content,
        message_type=p.message_type,
        reply_to=p.reply_to_message_id,
        product_id=p.product_id,
        nonce=p.nonce,
    )


@call("messages.delivered", params=UpToParams)
async def messages_delivered(ctx: Context, principal: Principal, p: UpToParams) -> dict:
    """Acknowledge receipt up to a message / seq: the sender gets `message.delivered`."""
    return await messaging.mark_delivered(
        ctx, principal, p.conversation_id, message_id=p.message_id, seq=p.seq
    )


@call("messages.edit", params=EditParams)
async def messages_edit(ctx: Context, principal: Principal, p: EditParams) -> dict:
    return await messaging.edit_message(ctx, principal, p.message_id, content=p.content)


@call("messages.delete", params=DeleteParams)
async def messages_delete(ctx: Context, principal: Principal, p: DeleteParams) -> dict:
    return await messaging.delete_message(ctx, principal, p.message_id, scope=p.scope)


@call("messages.react", params=ReactParams)
async def messages_react(ctx: Context, principal: Principal, p: ReactParams) -> dict:
    return await messaging.add_reaction(ctx, principal, p.message_id, p.emoji)


@call("messages.unreact", params=ReactParams)
async def messages_unreact(ctx: Context, principal: Principal, p: ReactParams) -> dict:
    return await messaging.remove_reaction(ctx, principal, p.message_id, p.emoji)


@call("messages.forward", params=ForwardParams)
async def messages_forward(ctx: Context, principal: Principal, p: ForwardParams) -> dict:
    return await messaging.forward_message(
        ctx, principal, p.message_id, conversation_id=p.conversation_id, nonce=p.nonce
    )


@call("messages.search", params=SearchParams)
async def messages_search(ctx: Context, principal: Principal, p: SearchParams) -> dict:
    return await messaging.search_messages(
        ctx,
        principal,
        q=p.q,
        conversation_id=p.conversation_id,
        limit=p.limit,
        cursor=p.cursor,
    )


@call("messages.product_context", params=MessageRef)
async def messages_product_context(ctx: Context, principal: Principal, p: MessageRef) -> dict:
    return await messaging.product_context(ctx, principal, p.message_id)


@call("products.contact", params=ContactParams)
async def products_contact(ctx: Context, principal: Principal, p: ContactParams) -> dict:
    """Contact seller (as POST /api/products/:id/contact)."""
    return await messaging.contact_seller(ctx, principal, p.product_id, text=p.text, nonce=p.nonce)


# Typing ----------------------------------------------------------------------------------------


@call("typing.start", params=TypingParams)
async def typing_start(ctx: Context, principal: Principal, p: TypingParams) -> dict:
    """The other participant gets `typing` (lapses after expires_in_ms unless renewed)."""
    return await messaging.typing(ctx, principal, p.conversation_id, active=True)


@call("typing.stop", params=TypingParams)
async def typing_stop(ctx: Context, principal: Principal, p: TypingParams) -> dict:
    return await messaging.typing(ctx, principal, p.conversation_id, active=False)
