"""Gateway calls of the messaging capability: the same domain actions as the HTTP routes
(server/http/messaging.py), as `call {method, params}` on the socket.

Params are the actions' command models (server/domain/messaging/commands.py), the very ones
the HTTP routes validate; where HTTP has the target's id in the path, the call carries it as a
field (`{conversation_id, ...}`: the command combined with `ConversationRef`, below).

Results are what the matching HTTP route returns. Events (message.created, message.updated,
message.deleted, message.delivered, conversation.read, conversation.updated,
conversation.created, conversation.deleted, reaction.added, reaction.removed, typing) are
listed in protocol/PROTOCOL.md.
"""

from __future__ import annotations

from server.domain.auth_tokens import Principal
from server.domain.context import Context
from server.domain.messaging import (
    contact,
    conversations,
    edits,
    history,
    reactions,
    receipts,
    search,
    send,
    typing,
)
from server.domain.messaging.commands import (
    ContactIn,
    ConversationListQuery,
    ConversationRef,
    CreateConversationIn,
    DeleteQuery,
    EditIn,
    ForwardIn,
    MessageListQuery,
    MessageRef,
    MuteIn,
    ProductRef,
    ReactIn,
    SearchQuery,
    SendIn,
    UpToIn,
)
from server.ws.calls import call

# The params of a call on one conversation / message / product: its command and the target's
# id (HTTP has the id in the path). No fields of their own: the commands are the contract.
# Query-shaped ones ignore unknown keys, as their HTTP query strings do.


class MuteParams(MuteIn, ConversationRef):
    pass


class UpToParams(UpToIn, ConversationRef):
    pass


class MessagesParams(MessageListQuery, ConversationRef, extra="ignore"):
    pass


class SendParams(SendIn, ConversationRef):
    pass


class EditParams(EditIn, MessageRef):
    pass


class DeleteParams(DeleteQuery, MessageRef, extra="ignore"):
    pass


class ReactParams(ReactIn, MessageRef):
    pass


class ForwardParams(ForwardIn, MessageRef):
    pass


class ContactParams(ContactIn, ProductRef):
    pass


# Conversations ---------------------------------------------------------------------------------


@call("conversations.list", params=ConversationListQuery)
async def conversations_list(ctx: Context, principal: Principal, p: ConversationListQuery) -> dict:
    """Your conversations, latest message first (as GET /api/conversations)."""
    return await conversations.list_conversations(ctx, principal, p)


@call("conversations.create", params=CreateConversationIn)
async def conversations_create(ctx: Context, principal: Principal, p: CreateConversationIn) -> dict:
    """Open the conversation with a user (again: the existing one, `created` false)."""
    return await conversations.create_conversation(ctx, principal, p)


@call("conversations.get", params=ConversationRef)
async def conversations_get(ctx: Context, principal: Principal, p: ConversationRef) -> dict:
    return await conversations.get_conversation(ctx, principal, p.conversation_id)


@call("conversations.delete", params=ConversationRef)
async def conversations_delete(ctx: Context, principal: Principal, p: ConversationRef) -> dict:
    """Delete the conversation for yourself (history up to now)."""
    await conversations.delete_conversation(ctx, principal, p.conversation_id)
    return {"conversation_id": p.conversation_id, "deleted": True}


@call("conversations.mute", params=MuteParams)
async def conversations_mute(ctx: Context, principal: Principal, p: MuteParams) -> dict:
    return await conversations.mute_conversation(ctx, principal, p.conversation_id, p)


@call("conversations.unmute", params=ConversationRef)
async def conversations_unmute(ctx: Context, principal: Principal, p: ConversationRef) -> dict:
    return await conversations.unmute_conversation(ctx, principal, p.conversation_id)


@call("conversations.read", params=UpToParams)
async def conversations_read(ctx: Context, principal: Principal, p: UpToParams) -> dict:
    """Mark read up to a message / seq (default: all); sends the read receipt."""
    return await receipts.mark_read(ctx, principal, p.conversation_id, p)


@call("conversations.mark_unread", params=ConversationRef)
async def conversations_mark_unread(ctx: Context, principal: Principal, p: ConversationRef):
    return await conversations.mark_unread(ctx, principal, p.conversation_id)


# Messages --------------------------------------------------------------------------------------


@call("messages.list", params=MessagesParams)
async def messages_list(ctx: Context, principal: Principal, p: MessagesParams) -> dict:
    return await history.list_messages(ctx, principal, p.conversation_id, p)


@call("messages.send", params=SendParams)
async def messages_send(ctx: Context, principal: Principal, p: SendParams) -> dict:
    """Send a message; with `nonce`, a resend returns the original instead of a duplicate."""
    return await send.send_message(ctx, principal, p.conversation_id, p)


@call("messages.delivered", params=UpToParams)
async def messages_delivered(ctx: Context, principal: Principal, p: UpToParams) -> dict:
    """Acknowledge receipt up to a message / seq: the sender gets `message.delivered`."""
    return await receipts.mark_delivered(ctx, principal, p.conversation_id, p)


@call("messages.edit", params=EditParams)
async def messages_edit(ctx: Context, principal: Principal, p: EditParams) -> dict:
    return await edits.edit_message(ctx, principal, p.message_id, p)


@call("messages.delete", params=DeleteParams)
async def messages_delete(ctx: Context, principal: Principal, p: DeleteParams) -> dict:
    return await edits.delete_message(ctx, principal, p.message_id, p)


@call("messages.react", params=ReactParams)
async def messages_react(ctx: Context, principal: Principal, p: ReactParams) -> dict:
    return await reactions.add_reaction(ctx, principal, p.message_id, p)


@call("messages.unreact", params=ReactParams)
async def messages_unreact(ctx: Context, principal: Principal, p: ReactParams) -> dict:
    return await reactions.remove_reaction(ctx, principal, p.message_id, p.emoji)


@call("messages.forward", params=ForwardParams)
async def messages_forward(ctx: Context, principal: Principal, p: ForwardParams) -> dict:
    return await send.forward_message(ctx, principal, p.message_id, p)


@call("messages.search", params=SearchQuery)
async def messages_search(ctx: Context, principal: Principal, p: SearchQuery) -> dict:
    return await search.search_messages(ctx, principal, p)


@call("messages.product_context", params=MessageRef)
async def messages_product_context(ctx: Context, principal: Principal, p: MessageRef) -> dict:
    return await contact.product_context(ctx, principal, p.message_id)


@call("products.contact", params=ContactParams)
async def products_contact(ctx: Context, principal: Principal, p: ContactParams) -> dict:
    """Contact seller (as POST /api/products/:id/contact)."""
    return await contact.contact_seller(ctx, principal, p.product_id, p)


# Typing ----------------------------------------------------------------------------------------


@call("typing.start", params=ConversationRef)
async def typing_start(ctx: Context, principal: Principal, p: ConversationRef) -> dict:
    """The other participant gets `typing` (lapses after expires_in_ms unless renewed)."""
    return await typing.set_typing(ctx, principal, p.conversation_id, active=True)


@call("typing.stop", params=ConversationRef)
async def typing_stop(ctx: Context, principal: Principal, p: ConversationRef) -> dict:
    return await typing.set_typing(ctx, principal, p.conversation_id, active=False)
