"""The event outbox (migration 0006): rows written in the commit of the transaction whose
events they hold, deleted once published, swept when their node died first."""

from __future__ import annotations

import uuid

from server.store.db import Params, Queries, Row

# clock_timestamp(): sent with COMMIT, so the row's age counts from the commit, not from the
# start of a transaction that may have waited on locks.
INSERT_SQL = (
    "INSERT INTO event_outbox (id, node_id, events, created_at)"
    " VALUES (%s, %s, %s, clock_timestamp())"
)


def insert_statement(row_id: uuid.UUID, node_id: str, events_json: str) -> tuple[str, Params]:
    """The INSERT sent with COMMIT (`Transaction.with_commit`); `events_json` is JSON text."""
    return INSERT_SQL, (row_id, node_id, events_json)


async def delete(q: Queries, ids: list[uuid.UUID]) -> int:
    return await q.execute("DELETE FROM event_outbox WHERE id = ANY(%s)", (ids,))


async def claim_stale(q: Queries, older_than_s: float, limit: int) -> list[Row]:
    """Rows older than `older_than_s` (their node had time to publish and did not), oldest
    first, locked for this transaction; other sweepers skip them."""
    return await q.fetch(
        """SELECT id, node_id, events, attempts FROM event_outbox
            WHERE created_at < now() - make_interval(secs => %s)
            ORDER BY created_at
            LIMIT %s
            FOR UPDATE SKIP LOCKED""",
        (older_than_s, limit),
    )


async def pending_count(q: Queries) -> int:
    return await q.fetchval("SELECT count(*) FROM event_outbox")


async def postpone(q: Queries, row_id: uuid.UUID) -> int:
    """Count a failed republish and move the row to the back of the queue; returns attempts."""
    return await q.fetchval(
        """UPDATE event_outbox SET attempts = attempts + 1, created_at = clock_timestamp()
            WHERE id = %s RETURNING attempts""",
        (row_id,),
    )
