"""Reactions: an emoji (or a `:shortcode:`) on a message, once per message, user and emoji.

Both participants get each change with the full list as they see it (`me` marks their own);
the message's author is notified unless they muted the conversation.
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from typing import Any

from server.domain import notifications
from server.domain.access import access_conversation, access_message, check_can_message
from server.domain.auth_tokens import Principal
from server.domain.context import Context
from server.domain.messaging.commands import ReactIn
from server.domain.messaging.ordering import conversation_lock, conversation_of_message
from server.domain.messaging.views import jsonable, participants
from server.domain.notification_catalog import preview
from server.domain.notifications import NotificationType
from server.errors import ValidationFailed
from server.ids import new_id
from server.store import messaging as store
from server.store.db import Row, Transaction

# Gateway events (per-user, sequenced).
REACTION_ADDED = "reaction.added"
REACTION_REMOVED = "reaction.removed"

MAX_REACTIONS_PER_USER = 10  # distinct emojis one user may put on one message

_SHORTCODE_RE = re.compile(r"^:[a-z0-9_+\-]{1,40}:$")


def check_emoji(emoji: str) -> str:
    """An emoji (unicode, with modifiers and joiners) or a `:shortcode:`."""
    value = (emoji or "").strip()
    if not value or len(value) > 32:
        raise ValidationFailed.field("emoji", "must be one emoji or a :shortcode:")
    if value.isascii():
        if not _SHORTCODE_RE.match(value):
            raise ValidationFailed.field("emoji", "must be one emoji or a :shortcode:")
        return value
    symbolic = False
    for ch in value:
        cat = unicodedata.category(ch)
        if cat[0] in ("L", "Z") or cat in ("Cc", "Cs", "Co", "Cn"):
            raise ValidationFailed.field("emoji", "must be one emoji or a :shortcode:")
        if cat in ("So", "Sk", "Me"):
            symbolic = True
    if not symbolic:
        raise ValidationFailed.field("emoji", "must be one emoji or a :shortcode:")
    return value


async def add_reaction(
    ctx: Context, actor: Principal, message_id: uuid.UUID, command: ReactIn
) -> dict[str, Any]:
    """React with an emoji (once per message, user and emoji; again is a no-op)."""
    emoji = check_emoji(command.emoji)
    conversation_id = await conversation_of_message(ctx, message_id)
    async with conversation_lock(ctx, conversation_id):
        async with ctx.db.transaction() as tx:
            row = await access_message(ctx, tx, actor, message_id, for_update=True)
            c = await access_conversation(ctx, tx, actor, row["conversation_id"])
            check_can_message(c)
            if row["deleted_at"] is not None:
                raise ValidationFailed.field("message_id", "a deleted message cannot be reacted to")
            count = await store.count_user_reactions(tx, message_id, actor.user_id)
            if count >= MAX_REACTIONS_PER_USER:
                raise ValidationFailed.field(
                    "emoji", f"at most {MAX_REACTIONS_PER_USER} reactions per message"
                )
            added = await store.add_reaction(
                tx, id=new_id(), message_id=message_id, user_id=actor.user_id, emoji=emoji
            )
            reactions = await store.reactions_of(tx, message_id)
            if added:
                _stage_reaction(ctx, tx, c, REACTION_ADDED, row, actor.user_id, emoji, reactions)
                author = row["sender_id"]
                if author != actor.user_id and not c["other_muted"]:
                    await notifications.notify(
                        ctx,
                        tx,
                        recipient_id=author,
                        actor_id=actor.user_id,
                        type=NotificationType.MESSAGE_REACTION,
                        entity_type="conversation",
                        entity_id=c["id"],
                        data={
                            "emoji": emoji,
                            "conversation_id": str(c["id"]),
                            "message_id": str(message_id),
                            "message_preview": preview(row["content"]),
                        },
                    )
    return reactions_result(message_id, reactions, actor.user_id)


async def remove_reaction(
    ctx: Context, actor: Principal, message_id: uuid.UUID, emoji: str
) -> dict[str, Any]:
    """Remove your reaction with this emoji, if any (matched as given, trimmed)."""
    emoji = (emoji or "").strip()
    if not emoji or len(emoji) > 64:
        raise ValidationFailed.field("emoji", "must be one emoji or a :shortcode:")
    conversation_id = await conversation_of_message(ctx, message_id)
    async with conversation_lock(ctx, conversation_id):
        async with ctx.db.transaction() as tx:
            row = await access_message(ctx, tx, actor, message_id, for_update=True)
            c = await access_conversation(ctx, tx, actor, row["conversation_id"])
            removed = await store.remove_reaction(tx, message_id, actor.user_id, emoji)
            reactions = await store.reactions_of(tx, message_id)
            if removed:
                _stage_reaction(ctx, tx, c, REACTION_REMOVED, row, actor.user_id, emoji, reactions)
    return reactions_result(message_id, reactions, actor.user_id)


def reactions_result(message_id: uuid.UUID, reactions: list, viewer: uuid.UUID) -> dict:
    """A message's reactions as `viewer` sees them (`me`: theirs is one)."""
    return {
        "message_id": message_id,
        "reactions": [
            {**r, "me": str(viewer) in [str(u) for u in r["user_ids"]]} for r in reactions or []
        ],
    }


def _stage_reaction(
    ctx: Context,
    tx: Transaction,
    c: Row,
    type: str,
    row: Row,
    user_id: uuid.UUID,
    emoji: str,
    reactions: list,
) -> None:
    for viewer in participants(c):
        ctx.events.to_users(
            tx,
            [viewer],
            type,
            jsonable(
                {
                    "conversation_id": c["id"],
                    "message_id": row["id"],
                    "seq": row["seq"],
                    "user_id": user_id,
                    "emoji": emoji,
                    **reactions_result(row["id"], reactions, viewer),
                }
            ),
        )
