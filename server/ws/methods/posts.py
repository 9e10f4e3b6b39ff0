"""Gateway calls and topics of posts: `posts.get` / `posts.create` / `posts.publish` as on
HTTP (server/http/posts.py), and the `post:<id>` topic, authorized like the HTTP read.
Events (post.updated, post.deleted) are listed in protocol/PROTOCOL.md."""

from __future__ import annotations

import uuid

from server.domain import access
from server.domain.auth_tokens import Principal
from server.domain.context import Context
from server.domain.messaging.commands import Command
from server.domain.posts import polls, publishing, reading
from server.domain.posts.commands import CreatePostIn, PostRef, VoteIn
from server.errors import NotFound
from server.ids import parse_uuid
from server.ws.calls import call, topic_authorizer


@topic_authorizer("post")
async def can_view_post(ctx: Context, principal: Principal, entity_id: str) -> bool:
    post_id = parse_uuid(entity_id)
    if post_id is None:
        return False
    try:
        await access.access_post(ctx, ctx.db, principal, post_id)
    except NotFound:
        return False
    return True


@topic_authorizer("poll")
async def can_view_poll(ctx: Context, principal: Principal, entity_id: str) -> bool:
    poll_id = parse_uuid(entity_id)
    if poll_id is None:
        return False
    try:
        await access.access_poll(ctx, ctx.db, principal, poll_id)
    except NotFound:
        return False
    return True


class VoteParams(VoteIn):
    poll_id: uuid.UUID


class PollRef(Command):
    poll_id: uuid.UUID


@call("polls.vote", params=VoteParams)
async def polls_vote(ctx: Context, principal: Principal, p: VoteParams) -> dict:
    """Vote, or change your vote (as POST / PATCH /api/polls/:id/vote)."""
    return await polls.vote(ctx, principal, p.poll_id, VoteIn(option_ids=p.option_ids), change=True)


@call("polls.results", params=PollRef)
async def polls_results(ctx: Context, principal: Principal, p: PollRef) -> dict:
    return await polls.get_results(ctx, principal, p.poll_id)


@call("posts.get", params=PostRef)
async def posts_get(ctx: Context, principal: Principal, p: PostRef) -> dict:
    """One post, as GET /api/posts/:id."""
    return await reading.get_post(ctx, principal, p.post_id)


@call("posts.create", params=CreatePostIn)
async def posts_create(ctx: Context, principal: Principal, p: CreatePostIn) -> dict:
    """Create a post, as POST /api/posts."""
    return await publishing.create_post(ctx, principal, p)


@call("posts.publish", params=PostRef)
async def posts_publish(ctx: Context, principal: Principal, p: PostRef) -> dict:
    """Publish a draft or scheduled post now, as POST /api/posts/:id/publish."""
    return await publishing.publish_post(ctx, principal, p.post_id)
