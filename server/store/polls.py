"""Polls, their options and votes. A vote (or a change of vote) moves the option counts, the
poll's `total_votes` and `voters_count` in the same statement as the vote rows, under the
poll's row lock, so results are exact whatever the concurrency."""

from __future__ import annotations

import uuid
from datetime import datetime

from server.ids import new_id
from server.store.db import Queries, Row

POLL_COLUMNS = """pl.id, pl.post_id, pl.question, pl.allow_multiple, pl.is_anonymous,
    pl.duration_s, pl.expires_at, pl.closed_at, pl.total_votes, pl.voters_count, pl.created_at,
    pl.updated_at"""


async def insert(
    q: Queries,
    *,
    post_id: uuid.UUID,
    question: str | None,
    options: list[str],
    allow_multiple: bool,
    is_anonymous: bool,
    duration_s: int | None,
    at: datetime,
) -> Row:
    poll = await q.fetchrow_one(
        f"""INSERT INTO polls AS pl (id, post_id, question, allow_multiple, is_anonymous,
                duration_s, created_at, updated_at)
            VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING {POLL_COLUMNS}""",
        (new_id(), post_id, question, allow_multiple, is_anonymous, duration_s, at, at),
    )
    await q.execute(
        """INSERT INTO poll_options (id, poll_id, position, text)
           SELECT o.id, %(poll)s, o.n - 1, o.text
           FROM unnest(%(ids)s::uuid[], %(texts)s::text[]) WITH ORDINALITY AS o (id, text, n)""",
        {"poll": poll["id"], "ids": [new_id() for _ in options], "texts": options},
    )
    return poll


async def get(q: Queries, poll_id: uuid.UUID, *, for_update: bool = False) -> Row | None:
    lock = "FOR UPDATE" if for_update else ""
    return await q.fetchrow(
        f"SELECT {POLL_COLUMNS} FROM polls pl WHERE pl.id = %s {lock}", (poll_id,)
    )


async def start_clock(q: Queries, post_id: uuid.UUID, published_at: datetime) -> Row | None:
    """On publication: a poll with a duration gets its deadline (published_at + duration)."""
    return await q.fetchrow(
        f"""UPDATE polls pl
            SET expires_at = %(at)s + make_interval(secs => pl.duration_s), updated_at = %(at)s
            WHERE pl.post_id = %(post)s AND pl.duration_s IS NOT NULL AND pl.expires_at IS NULL
            RETURNING {POLL_COLUMNS}""",
        {"post": post_id, "at": published_at},
    )


async def options_of(q: Queries, poll_ids: list[uuid.UUID]) -> list[Row]:
    if not poll_ids:
        return []
    return await q.fetch(
        """SELECT id, poll_id, position, text, votes_count FROM poll_options
           WHERE poll_id = ANY(%s) ORDER BY poll_id, position""",
        (poll_ids,),
    )


async def of_posts(q: Queries, post_ids: list[uuid.UUID]) -> list[Row]:
    if not post_ids:
        return []
    return await q.fetch(
        f"SELECT {POLL_COLUMNS} FROM polls pl WHERE pl.post_id = ANY(%s)", (post_ids,)
    )


async def votes_of(q: Queries, poll_ids: list[uuid.UUID], user_id: uuid.UUID) -> list[Row]:
    if not poll_ids:
        return []
    return await q.fetch(
        "SELECT poll_id, option_id FROM poll_votes WHERE poll_id = ANY(%s) AND user_id = %s",
        (poll_ids, user_id),
    )


async def replace_votes(
    q: Queries, poll_id: uuid.UUID, user_id: uuid.UUID, option_ids: list[uuid.UUID], at: datetime
) -> bool:
    """The user's votes on the poll become `option_ids` (checked by the caller), counts moving
    by the difference, in one statement that first locks the poll's row and checks it is still
    open at `at`: False (nothing written) if it closed meanwhile. Every voter of a poll queues
    on that row for this one statement and the COMMIT only."""
    return bool(
        await q.fetchval(
            """WITH open AS (
                   SELECT id FROM polls
                   WHERE id = %(poll)s AND closed_at IS NULL
                     AND (expires_at IS NULL OR expires_at > %(at)s)
                   FOR UPDATE),
               old AS (
                   DELETE FROM poll_votes
                   WHERE poll_id = %(poll)s AND user_id = %(user)s AND EXISTS (SELECT 1 FROM open)
                   RETURNING option_id),
               new AS (
                   INSERT INTO poll_votes (poll_id, option_id, user_id, created_at)
                   SELECT %(poll)s, o, %(user)s, %(at)s FROM unnest(%(options)s::uuid[]) o
                   WHERE EXISTS (SELECT 1 FROM open)
                   ON CONFLICT DO NOTHING
                   RETURNING option_id),
               delta AS (
                   SELECT option_id, sum(d) AS d FROM (
                       SELECT option_id, -1 AS d FROM old UNION ALL SELECT option_id, 1 FROM new
                   ) x GROUP BY option_id HAVING sum(d) <> 0),
               moved AS (
                   UPDATE poll_options po SET votes_count = po.votes_count + delta.d
                   FROM delta WHERE po.id = delta.option_id)
               UPDATE polls SET
                   total_votes = total_votes + (SELECT count(*) FROM new)
                       - (SELECT count(*) FROM old),
                   voters_count = voters_count
                       + (CASE WHEN EXISTS (SELECT 1 FROM new) THEN 1 ELSE 0 END)
                       - (CASE WHEN EXISTS (SELECT 1 FROM old) THEN 1 ELSE 0 END),
                   updated_at = %(at)s
               FROM open WHERE polls.id = open.id
               RETURNING true""",
            {"poll": poll_id, "user": user_id, "options": option_ids, "at": at},
        )
    )


async def close(q: Queries, poll_id: uuid.UUID, at: datetime) -> Row | None:
    """Close the poll now if it is still open; the closed row, or None."""
    return await q.fetchrow(
        f"""UPDATE polls pl SET closed_at = %(at)s, updated_at = %(at)s
            WHERE pl.id = %(id)s AND pl.closed_at IS NULL RETURNING {POLL_COLUMNS}""",
        {"id": poll_id, "at": at},
    )
