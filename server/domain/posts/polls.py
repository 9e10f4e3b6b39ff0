"""Polls, embedded in posts (the spec's Polls): 2-10 options, single or multiple choice,
anonymous or not, an optional duration that starts when the post is published. Vote, change
your vote until it closes, results (counts, percentages, total, time left, your votes), close
early (the post's creator).

Live: `poll:<id>` (subscribing is checked like reading the post) gets `poll.updated` with fresh
results, coalesced to at most one per poll per second per node however fast votes arrive, and
`poll.closed` once, when it is closed early or its deadline passes (a job queued for the
deadline, so exactly one worker of the cluster announces it).
"""

from __future__ import annotations

import uuid
from collections.abc import Hashable
from datetime import datetime
from typing import Any

from server.domain.access import access_poll, check_author, check_published
from server.domain.auth_tokens import Principal
from server.domain.coalescer import Coalescer
from server.domain.context import Context
from server.domain.posts.commands import PollIn, VoteIn
from server.errors import Conflict, ValidationFailed
from server.jobs.queue import enqueue
from server.store import polls as store
from server.store.db import Row, Transaction

POLL_UPDATED = "poll.updated"
POLL_CLOSED = "poll.closed"
CLOSE_JOB = "polls.close_expired"
UPDATES_INTERVAL_S = 1.0


def topic(poll_id: Any) -> str:
    return f"poll:{poll_id}"


def status(poll: Row, now: datetime) -> str:
    if poll["closed_at"] is not None:
        return "closed"
    if poll["expires_at"] is not None and now >= poll["expires_at"]:
        return "expired"
    return "active"


def results(
    poll: Row, options: list[Row], now: datetime, mine: set[uuid.UUID] | None = None
) -> dict[str, Any]:
    """The poll as everyone sees it (plus `my_votes` / `voted` when `mine` is given)."""
    voters = poll["voters_count"]
    view: dict[str, Any] = {
        "id": str(poll["id"]),
        "post_id": str(poll["post_id"]),
        "question": poll["question"],
        "allow_multiple": poll["allow_multiple"],
        "is_anonymous": poll["is_anonymous"],
        "status": status(poll, now),
        "expires_at": poll["expires_at"],
        "closed_at": poll["closed_at"],
        "seconds_remaining": (
            max(0, int((poll["expires_at"] - now).total_seconds()))
            if poll["expires_at"] is not None and poll["closed_at"] is None
            else None
        ),
        "total_votes": poll["total_votes"],
        "voters_count": voters,
        "options": [
            {
                "id": str(o["id"]),
                "text": o["text"],
                "position": o["position"],
                "votes": o["votes_count"],
                # Of the people who voted (a multiple-choice poll's add up past 100).
                "percentage": round(100 * o["votes_count"] / voters, 1) if voters else 0.0,
            }
            for o in options
        ],
    }
    if mine is not None:
        view["my_votes"] = sorted(str(o) for o in mine)
        view["voted"] = bool(mine)
    return view


async def attach(
    ctx: Context, tx: Transaction, post_id: uuid.UUID, poll: PollIn, published_at: datetime | None
) -> None:
    """Create the post's poll (its clock starts now if the post is published now)."""
    await store.insert(
        tx,
        post_id=post_id,
        question=poll.question,
        options=poll.options,
        allow_multiple=poll.allow_multiple,
        is_anonymous=poll.is_anonymous,
        duration_s=poll.duration_s,
        at=ctx.clock.now(),
    )
    if published_at is not None:
        await on_published(ctx, tx, post_id, published_at)


async def on_published(
    ctx: Context, tx: Transaction, post_id: uuid.UUID, published_at: datetime
) -> None:
    """The post went out: a poll with a duration gets its deadline and a job to announce it."""
    poll = await store.start_clock(tx, post_id, published_at)
    if poll is not None:
        await enqueue(tx, CLOSE_JOB, {"poll_id": str(poll["id"])}, run_at=poll["expires_at"])


async def vote(
    ctx: Context, actor: Principal, poll_id: uuid.UUID, command: VoteIn, *, change: bool
) -> dict[str, Any]:
    """Vote (`change` False: refused if you already voted) or change your vote."""
    wanted = list(dict.fromkeys(command.option_ids))
    async with ctx.db.transaction() as tx:
        poll, post = await access_poll(ctx, tx, actor, poll_id)
        check_published(post)
        now = ctx.clock.now()
        if status(poll, now) != "active":
            raise Conflict("This poll is closed.")
        options = await store.options_of(tx, [poll_id])
        known = {o["id"] for o in options}
        if any(o not in known for o in wanted):
            raise ValidationFailed.field("option_ids", "names an option of another poll")
        if not poll["allow_multiple"] and len(wanted) != 1:
            raise ValidationFailed.field("option_ids", "this poll takes exactly one option")
        mine = {r["option_id"] for r in await store.votes_of(tx, [poll_id], actor.user_id)}
        if mine and not change:
            raise Conflict("You already voted: PATCH your vote to change it.")
        # Last: the poll row's lock is taken by this statement and held only until COMMIT.
        if not await store.replace_votes(tx, poll_id, actor.user_id, wanted, now):
            raise Conflict("This poll is closed.")
    _updates(ctx).touch(poll_id)
    after = await store.get(ctx.db, poll_id)
    assert after is not None
    return results(after, await store.options_of(ctx.db, [poll_id]), now, set(wanted))


async def get_results(ctx: Context, actor: Principal, poll_id: uuid.UUID) -> dict[str, Any]:
    poll, _ = await access_poll(ctx, ctx.db, actor, poll_id)
    options = await store.options_of(ctx.db, [poll_id])
    mine = {r["option_id"] for r in await store.votes_of(ctx.db, [poll_id], actor.user_id)}
    return results(poll, options, ctx.clock.now(), mine)


async def close_poll(ctx: Context, actor: Principal, poll_id: uuid.UUID) -> dict[str, Any]:
    """Close early: the post's creator only."""
    async with ctx.db.transaction() as tx:
        poll, post = await access_poll(ctx, tx, actor, poll_id, for_update=True)
        check_author(post, actor, creator_only=True)
        if status(poll, ctx.clock.now()) != "active":
            raise Conflict("This poll is already closed.")
        closed = await _close(ctx, tx, poll_id, ctx.clock.now())
    return closed


async def _close(ctx: Context, tx: Transaction, poll_id: uuid.UUID, at: datetime) -> dict:
    poll = await store.close(tx, poll_id, at)
    if poll is None:
        return {}
    options = await store.options_of(tx, [poll_id])
    final = results(poll, options, at)
    ctx.events.to_topic(tx, topic(poll_id), POLL_CLOSED, _jsonable(final))
    return final


async def close_expired_job(ctx: Context, payload: dict[str, Any]) -> None:
    """Job `polls.close_expired`: announce a poll whose deadline passed (once: a poll already
    closed, or whose deadline moved, is left alone)."""
    poll_id = uuid.UUID(payload["poll_id"])
    async with ctx.db.transaction() as tx:
        poll = await store.get(tx, poll_id, for_update=True)
        if poll is None or poll["closed_at"] is not None or poll["expires_at"] is None:
            return
        if poll["expires_at"] > ctx.clock.now():
            raise RuntimeError("not due yet by this node's clock: retried")
        await _close(ctx, tx, poll_id, poll["expires_at"])


def _updates(ctx: Context) -> Coalescer:
    coalescer = ctx.coalescers.get(POLL_UPDATED)
    if coalescer is None:

        async def emit(key: Hashable) -> None:
            poll = await store.get(ctx.db, key)  # type: ignore[arg-type]
            if poll is None:
                return
            options = await store.options_of(ctx.db, [poll["id"]])
            await ctx.events.ephemeral_to_topic(
                topic(key), POLL_UPDATED, _jsonable(results(poll, options, ctx.clock.now()))
            )

        coalescer = ctx.coalescers[POLL_UPDATED] = Coalescer(UPDATES_INTERVAL_S, emit)
    return coalescer


def _jsonable(view: dict[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in view.items()}


async def polls_of_posts(
    ctx: Context, post_ids: list[uuid.UUID], viewer: uuid.UUID
) -> dict[uuid.UUID, dict[str, Any]]:
    """The polls of a page of posts as the viewer sees them (three queries; none without
    polls)."""
    polls = await store.of_posts(ctx.db, post_ids)
    if not polls:
        return {}
    ids = [p["id"] for p in polls]
    options = await store.options_of(ctx.db, ids)
    votes = await store.votes_of(ctx.db, ids, viewer)
    now = ctx.clock.now()
    out = {}
    for poll in polls:
        mine = {v["option_id"] for v in votes if v["poll_id"] == poll["id"]}
        opts = [o for o in options if o["poll_id"] == poll["id"]]
        out[poll["post_id"]] = results(poll, opts, now, mine)
    return out
