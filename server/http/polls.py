"""HTTP routes of polls: vote, change your vote, results, close early. Thin wrappers of
server/domain/posts/polls.py (the gateway's `polls.vote` / `polls.results` wrap the same)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, Field

from server.domain.posts import polls
from server.domain.posts.commands import VoteIn
from server.http.endpoint import context, endpoint, path_id, principal

routes = web.RouteTableDef()
TAGS = ("polls",)


class OptionOut(BaseModel):
    """An option and its votes (`percentage`: of the people who voted)."""

    id: uuid.UUID
    text: str
    position: int
    votes: int
    percentage: float


class PollOut(BaseModel):
    """A poll's results as you see them."""

    id: uuid.UUID
    post_id: uuid.UUID
    question: str | None
    allow_multiple: bool
    is_anonymous: bool
    status: Literal["active", "expired", "closed"]
    expires_at: datetime | None
    closed_at: datetime | None
    seconds_remaining: int | None
    total_votes: int = Field(description="Votes cast (several per voter on a multiple choice)")
    voters_count: int
    options: list[OptionOut]
    my_votes: list[uuid.UUID] = []
    voted: bool = False


@routes.post("/api/polls/{id}/vote")
@endpoint(
    "Vote on a poll",
    body=VoteIn,
    response=PollOut,
    tags=TAGS,
    errors=(404, 409, 422),
    operation_id="polls.vote",
)
async def vote(request: web.Request, body: VoteIn) -> Any:
    """One option (several on a multiple-choice poll); once (PATCH changes it)."""
    return await polls.vote(
        context(request), principal(request), path_id(request), body, change=False
    )


@routes.patch("/api/polls/{id}/vote")
@endpoint(
    "Change your vote",
    body=VoteIn,
    response=PollOut,
    tags=TAGS,
    errors=(404, 409, 422),
    operation_id="polls.change_vote",
)
async def change_vote(request: web.Request, body: VoteIn) -> Any:
    """Until the poll closes; your earlier choice is replaced."""
    return await polls.vote(
        context(request), principal(request), path_id(request), body, change=True
    )


@routes.get("/api/polls/{id}/results")
@endpoint(
    "A poll's results", response=PollOut, tags=TAGS, errors=(404,), operation_id="polls.results"
)
async def results(request: web.Request) -> Any:
    """Counts, percentages, total, time left and your votes."""
    return await polls.get_results(context(request), principal(request), path_id(request))


@routes.post("/api/polls/{id}/close")
@endpoint(
    "Close a poll early",
    response=PollOut,
    tags=TAGS,
    errors=(403, 404, 409),
    operation_id="polls.close",
)
async def close(request: web.Request) -> Any:
    """The post's creator only; subscribers get `poll.closed`."""
    return await polls.close_poll(context(request), principal(request), path_id(request))
