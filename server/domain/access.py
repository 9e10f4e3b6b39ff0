"""The one module of access checks: who may see or act on which entity.

Every domain action that touches an entity on behalf of an actor resolves it
through exactly one function here (``access_conversation``,
``access_message``, ``access_post``, ...). Keeping the checks in one
place means a rule such as "non-members get NotFound, never Forbidden" is
written once and cannot drift between HTTP, the gateway and background jobs.
"""

from __future__ import annotations

import uuid
from typing import Any

from server.domain.auth_tokens import Principal
from server.domain.context import Context
from server.errors import Conflict, Forbidden, NotFound
from server.store import comments as comments_store
from server.store import lists as lists_store
from server.store import media as media_store
from server.store import messaging as messaging_store
from server.store import polls as polls_store
from server.store.commerce import reads as commerce_store
from server.store.db import Row
from server.store.posts import reads as posts_store

# --- messaging ---------------------------------------------------------------
# A conversation, and every message in it, exists only for its participants: to anyone else
# it is NotFound (never Forbidden, which would confirm it exists). History stays readable
# across a block; writing to the other side does not, and the blocked side is never told why.

NO_CONVERSATION = "No such conversation."
NO_MESSAGE = "No such message."
CANNOT_MESSAGE = "You cannot message this account."
YOU_BLOCKED = "You have blocked this account. Unblock it to send messages."


async def access_conversation(
    ctx: Context, q: Any, actor: Principal, conversation_id: uuid.UUID
) -> Row:
    """The conversation as `actor` takes part in it, in one round trip: their participant row
    (watermarks, `cleared_seq`, mute), the other participant's watermarks and the blocks
    between them. NotFound when the actor is not a participant, exactly as when it does not
    exist. `q` is the transaction of the action (or `ctx.db` for a read)."""
    conversation = await messaging_store.context(q, conversation_id, actor.user_id)
    if conversation is None:
        raise NotFound(NO_CONVERSATION)
    return conversation


async def access_message(
    ctx: Context, q: Any, actor: Principal, message_id: uuid.UUID, *, for_update: bool = False
) -> Row:
    """The message if `actor` may see it: they take part in its conversation, and it is not
    deleted for them nor older than their "delete conversation" (a tombstone deleted for
    everyone is visible; actions refuse to act on it themselves). NotFound otherwise.

    `for_update` (inside a transaction) takes the message's row lock before reading it, so
    what is checked is what the action then writes."""
    if for_update:
        await messaging_store.lock_message(q, message_id)
    message = await messaging_store.visible_message(q, message_id, actor.user_id)
    if message is None:
        raise NotFound(NO_MESSAGE)
    return message


def can_message(conversation: Row) -> bool:
    """Whether the actor may write to the other participant of a conversation they accessed:
    no block either way and the other account still active."""
    return not (
        conversation["blocking"] or conversation["blocked_by"] or not conversation["other_active"]
    )


def check_can_message(conversation: Row) -> None:
    """Forbidden unless `can_message`: the blocker is told to unblock; anyone else gets the
    same words whether blocked or the account is gone."""
    if conversation["blocking"]:
        raise Forbidden(YOU_BLOCKED)
    if conversation["blocked_by"] or not conversation["other_active"]:
        raise Forbidden(CANNOT_MESSAGE)


async def check_can_message_user(ctx: Context, q: Any, actor: Principal, other: Row | None) -> None:
    """`check_can_message` before any conversation exists: may `actor` open one with (or write
    to) `other`, a user row (None: no such user any more)."""
    if other is None or not other["is_active"]:
        raise Forbidden(CANNOT_MESSAGE)
    blocks = await messaging_store.blocks_between(q, actor.user_id, other["id"])
    if blocks["blocking"]:
        raise Forbidden(YOU_BLOCKED)
    if blocks["blocked_by"]:
        raise Forbidden(CANNOT_MESSAGE)


def blocked_either_way(conversation: Row) -> bool:
    """A block stands between the participants: what one does (reading, receiving) is then
    not shown to the other."""
    return bool(conversation["blocking"] or conversation["blocked_by"])


# --- commerce ----------------------------------------------------------------
# A seller, shop owner, event organizer or group creator and a viewer who blocked each other
# (either way) do not see each other's items: to the viewer they are NotFound, exactly as if
# absent. The rule is applied in SQL (server.store.visibility, the viewer required); these
# are the one place the HTTP reads and the `group:<id>` topic authorizer ask it.


async def access_product(ctx: Context, q: Any, viewer: Principal, product_id: uuid.UUID) -> Row:
    """The product (with its shop) if `viewer` may see it; NotFound otherwise."""
    row = await commerce_store.get_product(q, product_id, viewer.user_id)
    if row is None:
        raise NotFound("No such product.")
    return row


async def access_shop(ctx: Context, q: Any, viewer: Principal, ref: str) -> Row:
    """The shop by id or by handle (`handle` or `$handle`) if `viewer` may see it (with its
    product count); NotFound otherwise."""
    try:
        shop_id: uuid.UUID | None = uuid.UUID(ref)
    except ValueError:
        shop_id = None
    if shop_id is not None:
        row = await commerce_store.get_shop(q, shop_id, viewer.user_id)
    else:
        row = await commerce_store.get_shop_by_handle(q, ref.lstrip("$"), viewer.user_id)
    if row is None:
        raise NotFound("No such shop.")
    return row


async def access_event(ctx: Context, q: Any, viewer: Principal, event_id: uuid.UUID) -> Row:
    """The event if `viewer` may see it (the organizer did not block them, nor they the
    organizer); NotFound otherwise."""
    row = await commerce_store.get_event(q, event_id, viewer.user_id)
    if row is None:
        raise NotFound("No such event.")
    return row


async def access_group(ctx: Context, q: Any, viewer: Principal, group_id: uuid.UUID) -> Row:
    """The buy-together group (with its product) if `viewer` may see it; NotFound otherwise.
    Both the HTTP read and `subscribe group:<id>` ask this."""
    row = await commerce_store.get_group(q, group_id, viewer.user_id)
    if row is None:
        raise NotFound("No such buy-together group.")
    return row


async def access_plan(ctx: Context, q: Any, viewer: Principal, plan_id: uuid.UUID) -> Row:
    """The installment plan (with its product) if `viewer` may see it; NotFound otherwise."""
    row = await commerce_store.get_plan(q, plan_id, viewer.user_id)
    if row is None:
        raise NotFound("No such installment plan.")
    return row


# --- posts -------------------------------------------------------------------------------
# A post exists for a viewer only if the visibility rule admits them (server.store.visibility
# `post_visible`: audience, private accounts, blocks with any author, drafts to their author
# only): otherwise NotFound, as if absent. Acting on it as an author needs `check_author`.

NO_POST = "No such post."


async def access_post(ctx: Context, q: Any, viewer: Principal, post_id: uuid.UUID) -> Row:
    """The post if `viewer` may see it; NotFound otherwise (HTTP reads, `post:<id>`, actions)."""
    row = await posts_store.get_post(q, post_id, viewer.user_id)
    if row is None:
        raise NotFound(NO_POST)
    return row


def check_published(post: Row) -> None:
    """Conflict unless the post is published: likes, comments, votes, bookmarks and reposts
    are for published posts (a draft's author sees it; nobody interacts with it yet)."""
    if post["status"] != "published":
        raise Conflict("This post is not published yet.")


def check_author(post: Row, actor: Principal, *, creator_only: bool = False) -> None:
    """Forbidden unless `actor` is one of the post's authors (its creator, with
    `creator_only`). Call it on a post the actor could access (else they get NotFound first)."""
    allowed = [post["author_id"]] if creator_only else post["author_ids"]
    if actor.user_id not in allowed:
        raise Forbidden(
            "Only the post's creator may do this."
            if creator_only
            else "Only the post's authors may do this."
        )


NO_COMMENT = "No such comment."


async def access_comment(
    ctx: Context, q: Any, viewer: Principal, comment_id: uuid.UUID, *, for_update: bool = False
) -> tuple[Row, Row]:
    """(comment, post) if the comment is shown (not deleted, or a placeholder holding replies)
    and the viewer may see its post; NotFound otherwise, exactly as if absent."""
    comment = await comments_store.get(q, comment_id, for_update=for_update)
    if comment is None:
        raise NotFound(NO_COMMENT)
    try:
        post = await access_post(ctx, q, viewer, comment["post_id"])
    except NotFound:
        raise NotFound(NO_COMMENT) from None
    return comment, post


NO_POLL = "No such poll."


async def access_poll(
    ctx: Context, q: Any, viewer: Principal, poll_id: uuid.UUID, *, for_update: bool = False
) -> tuple[Row, Row]:
    """(poll, post) if the viewer may see the poll's post; NotFound otherwise, as if absent.
    Voting, results and `subscribe poll:<id>` all ask this."""
    poll = await polls_store.get(q, poll_id, for_update=for_update)
    if poll is None:
        raise NotFound(NO_POLL)
    try:
        post = await access_post(ctx, q, viewer, poll["post_id"])
    except NotFound:
        raise NotFound(NO_POLL) from None
    return poll, post


# --- media -------------------------------------------------------------------
# An upload belongs to its uploader: only they see its record and only they attach it (to a
# message, a profile; posts later). To anyone else it does not exist. Its served files are
# public to whoever holds their URL (the media id in them is unguessable).

NO_MEDIA = "No such media."


async def access_own_media(ctx: Context, q: Any, actor: Principal, media_id: uuid.UUID) -> Row:
    """The media `actor` uploaded; NotFound for anyone else's, exactly as for a missing one."""
    row = await media_store.get(q, media_id)
    if row is None or row["owner_id"] != actor.user_id:
        raise NotFound(NO_MEDIA)
    return row


def check_attachable(actor: Principal, rows: list[Row], wanted: list[uuid.UUID]) -> None:
    """Every wanted media is the actor's own (else NotFound, as if absent) and processed."""
    found = {row["id"]: row for row in rows}
    for media_id in wanted:
        row = found.get(media_id)
        if row is None or row["owner_id"] != actor.user_id:
            raise NotFound(NO_MEDIA)
        if row["status"] != "ready":
            raise Conflict(
                f"Media {media_id} is {row['status']}; attach it once it is ready"
                + (f" ({row['failure_reason']})." if row["failure_reason"] else ".")
            )


# --- lists -------------------------------------------------------------------
# A list exists for its owner and, when public, for whoever the owner and they have not
# blocked either way; to anyone else it is NotFound (a private list's existence is not
# confirmed). Only the owner changes it: a public list's visitor gets Forbidden.

NO_LIST = "No such list."


async def access_list(
    ctx: Context, q: Any, viewer: Principal, list_id: uuid.UUID, *, to_change: bool = False
) -> Row:
    """The list as `viewer` may see it (NotFound otherwise); `to_change`: the owner's, locked
    for the change (inside `q`'s transaction), else Forbidden for a visitor of a public list."""
    row = await lists_store.get_list_for(q, list_id, viewer.user_id)
    if row is None:
        raise NotFound(NO_LIST)
    if to_change:
        if row["owner_id"] != viewer.user_id:
            raise Forbidden("Only the list's owner can change it.")
        locked = await lists_store.lock_own_list(q, list_id, viewer.user_id)
        if locked is None:
            raise NotFound(NO_LIST)
        return locked
    return row
