"""Sign-in sessions and their revocation.

A sign-in session is a refresh-token family: it starts at login or registration, each refresh
rotates its token, and every access token it issues carries its id (the `sid` claim). Ending it
(logout on this device or everywhere, a password change or reset, a refresh-token reuse, a
deactivation, "revoke this device") does three things, all from the revoking transaction:

1. revokes the family's refresh tokens in PostgreSQL (no new access tokens);
2. records the session id as revoked in the bus (`RevocationStore`: memory or Redis), for as
   long as an access token lives, so the ones already issued are refused on every transport;
3. tells every gateway node to close that session's sockets and SSE streams (close 4004).

Steps 2 and 3 travel through the event sink's outbox (`end_sessions`), so they happen once the
transaction commits and are retried until they do.

The hot path (every authenticated HTTP request and gateway call) asks `is_revoked`, which reads
this process's cache: no database round trip, and a bus read only on a cache miss.

Consistency window: the revoking node's process sees the revocation as soon as its outbox
publishes (memory bus: before the response is sent). Every other node drops its cached entry
for the user when the control notice arrives over the bus (Redis pub/sub: milliseconds). If a
node misses that notice (its subscription dropped), its entries are cleared on resubscribe,
and in any case an entry is re-read from the bus after `CACHE_S` seconds: a revoked token is
honoured at most that long on a node that missed the notice, and never after the bus holds
the revocation on nodes that got it.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime, timedelta
from itertools import groupby

from server.bus.base import Bus, TopicEvent
from server.domain.events import CONTROL_TOPIC_PREFIX, DISCONNECT, EventSink
from server.store import sessions as sessions_store
from server.store.db import Database, Transaction

log = logging.getLogger(__name__)

# How long a process trusts its cached copy of a user's revoked sessions without a notice.
CACHE_S = 5.0
# Above this many cached users the cache starts again (bounded memory, one miss each).
MAX_CACHED_USERS = 100_000
# A revocation is kept a little longer than an access token lives (clock skew, iat rounding).
REVOCATION_MARGIN_S = 60


class RevocationCache:
    """This process's view of revoked sessions, per user: read through from the bus, dropped
    on each control notice for the user and on a bus resync."""

    def __init__(
        self,
        bus: Bus,
        cache_s: float = CACHE_S,
        fallback: Callable[[uuid.UUID], Awaitable[frozenset[str]]] | None = None,
    ) -> None:
        self._bus = bus
        self._cache_s = cache_s
        # Where to read when the bus cannot answer (a Redis outage): PostgreSQL, which records
        # every revocation. Reading there keeps revoked tokens refused and requests answered.
        self._fallback = fallback
        self._entries: dict[uuid.UUID, tuple[float, frozenset[str]]] = {}
        # Bumped by every invalidation: a read that raced one does not store a stale answer.
        self._changes = 0

    def start(self) -> None:
        self._bus.topic_listeners.append(self._on_topic_event)
        self._bus.resync_listeners.append(self.clear)

    def stop(self) -> None:
        for listeners, fn in (
            (self._bus.topic_listeners, self._on_topic_event),
            (self._bus.resync_listeners, self.clear),
        ):
            if fn in listeners:
                listeners.remove(fn)  # type: ignore[arg-type]

    async def revoked(self, user_id: uuid.UUID) -> frozenset[str]:
        now = time.monotonic()
        hit = self._entries.get(user_id)
        if hit is not None and hit[0] > now:
            return hit[1]
        changes = self._changes
        try:
            revoked = await self._bus.revoked_sessions(user_id)
        except Exception:
            if self._fallback is None:
                raise
            log.warning("revocations read from the database: the bus cannot answer", exc_info=True)
            revoked = await self._fallback(user_id)
        if changes == self._changes:
            if len(self._entries) >= MAX_CACHED_USERS:
                self._entries.clear()
            self._entries[user_id] = (now + self._cache_s, revoked)
        return revoked

    async def is_revoked(self, user_id: uuid.UUID, session_id: uuid.UUID | None) -> bool:
        if session_id is None:
            return False
        return str(session_id) in await self.revoked(user_id)

    def forget(self, user_id: uuid.UUID) -> None:
        self._changes += 1
        self._entries.pop(user_id, None)

    def clear(self) -> None:
        self._changes += 1
        self._entries.clear()

    def _on_topic_event(self, event: TopicEvent) -> None:
        if event.type != DISCONNECT or not event.topic.startswith(CONTROL_TOPIC_PREFIX):
            return
        try:
            self.forget(uuid.UUID(event.topic[len(CONTROL_TOPIC_PREFIX) :]))
        except ValueError:
            return


def end_sessions(
    events: EventSink,
    tx: Transaction,
    user_id: uuid.UUID,
    session_ids: Iterable[uuid.UUID],
    *,
    access_ttl_s: int,
    reason: str,
) -> None:
    """Once `tx` commits: refuse the access tokens of `session_ids` and close their sockets
    and SSE streams on every node (4004). The caller revokes their refresh tokens in `tx`."""
    events.end_sessions(
        tx,
        user_id,
        reason,
        session_ids=list(session_ids),
        revoke_for_s=access_ttl_s + REVOCATION_MARGIN_S,
    )


def database_revocations(
    db: Database, access_ttl_s: int
) -> Callable[[uuid.UUID], Awaitable[frozenset[str]]]:
    """A RevocationCache fallback: a user's sessions revoked within an access token's lifetime,
    read from PostgreSQL."""

    async def read(user_id: uuid.UUID) -> frozenset[str]:
        since = datetime.now(UTC) - timedelta(seconds=access_ttl_s + REVOCATION_MARGIN_S)
        return frozenset(str(i) for i in await sessions_store.revoked_for_user(db, user_id, since))

    return read


async def restore_revocations(db: Database, bus: Bus, access_ttl_s: int) -> None:
    """Record again in the bus the sessions revoked within an access token's lifetime: a memory
    bus starts empty, and a Redis that restarted may have lost them. Run at process start.
    Best effort: a failure is logged, the revocations already in the bus stand."""
    horizon = timedelta(seconds=access_ttl_s + REVOCATION_MARGIN_S)
    # Wall time on purpose: it is compared with PostgreSQL's now() of the revocation.
    since = datetime.now(UTC) - horizon
    try:
        rows = await sessions_store.recently_revoked(db, since)
        for user_id, group in groupby(rows, key=lambda row: row["user_id"]):
            ids = [str(row["id"]) for row in group]
            await bus.revoke_sessions(user_id, ids, horizon.total_seconds())
    except Exception:
        log.warning("revoked sessions not restored to the bus", exc_info=True)
