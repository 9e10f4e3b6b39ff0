"""What a post's publication and deletion set off for feeds, inside their transaction, at a
fixed cost whatever the authors' follower counts (the fan-out itself is the `feeds.fanout`
job, server/domain/feeds/fanout.py):

- the hashtags' use is counted in the hour of publication (trending, server/domain/feeds/
  trending.py), and uncounted on deletion;
- authors below `feeds.fanout_threshold` followers: one `feeds.fanout` job (deletion:
  `feeds.retract`);
- authors at or past it: one `feed.post` (deletion: `feed.post_removed`) on the topic
  `feed:<author_id>`, nothing per follower; their followers' feeds pull their posts on read.
  Only for a single-author post: a topic reaches every subscriber alike, and a co-author may
  have blocked (or be blocked by) some of them, who may not see the post. A co-authored post
  of a big author is therefore not pushed to the big author's topic; their followers get it on
  their next feed read (the pull, which applies the visibility rules). The fan-out job of the
  small co-authors filters per follower, blocks included.
Private posts (their authors' eyes only) go to no timeline and no push. Hashtag uses are
counted only for posts everyone may see (server/store/hashtags.count_uses).
"""

from __future__ import annotations

import uuid
from typing import Any

from server.domain.context import Context
from server.jobs.queue import enqueue
from server.store import feeds as feeds_store
from server.store import hashtags as hashtags_store
from server.store.db import Queries, Row, Transaction

FANOUT_JOB = "feeds.fanout"
RETRACT_JOB = "feeds.retract"
FEED_POST = "feed.post"
FEED_POST_REMOVED = "feed.post_removed"


def topic(author_id: Any) -> str:
    return f"feed:{author_id}"


def event_of(post: Row) -> dict[str, Any]:
    """A feed event: ids and the time, never content (a client fetches the post over HTTP,
    which applies the visibility rules of now)."""
    return {
        "post_id": str(post["id"]),
        "author_id": str(post["author_id"]),
        "author_ids": [str(a) for a in post["author_ids"]],
        "published_at": post["published_at"].isoformat() if post["published_at"] else None,
    }


async def split_authors(
    ctx: Context, q: Queries, post: Row
) -> tuple[list[uuid.UUID], list[uuid.UUID]]:
    """(fanned-out authors, pulled authors) of the post, by their follower counts now."""
    reach = await feeds_store.authors_reach(q, post["author_ids"])
    threshold = ctx.settings.feeds.fanout_threshold
    small = [a for a in post["author_ids"] if reach.get(a, 0) < threshold]
    big = [a for a in post["author_ids"] if reach.get(a, 0) >= threshold]
    return small, big


def _topic_authors(post: Row, big: list[uuid.UUID]) -> list[uuid.UUID]:
    """The big authors whose topic gets the post's events: none for a co-authored post (see
    the module docstring: a topic cannot leave out a subscriber a co-author blocked)."""
    return big if len(post["author_ids"]) == 1 else []


def _hour(post: Row) -> Any:
    return post["published_at"].replace(minute=0, second=0, microsecond=0)


async def on_published(ctx: Context, tx: Transaction, post: Row) -> None:
    """Call after the post's hashtags are linked, in the publishing transaction."""
    await hashtags_store.count_uses(tx, post["id"], _hour(post), +1)
    if post["visibility"] == "private":
        return
    small, big = await split_authors(ctx, tx, post)
    if small:
        await enqueue(tx, FANOUT_JOB, {"post_id": str(post["id"])})
    for author in _topic_authors(post, big):
        ctx.events.to_topic(tx, topic(author), FEED_POST, event_of(post))


async def on_deleted(ctx: Context, tx: Transaction, post: Row) -> None:
    """Call before the post's hashtags are unlinked, in the deleting transaction."""
    if post["status"] != "published":
        return
    await hashtags_store.count_uses(tx, post["id"], _hour(post), -1)
    if post["visibility"] == "private":
        return
    small, big = await split_authors(ctx, tx, post)
    if small:
        await enqueue(tx, RETRACT_JOB, {"post_id": str(post["id"])})
    for author in _topic_authors(post, big):
        ctx.events.to_topic(tx, topic(author), FEED_POST_REMOVED, event_of(post))
