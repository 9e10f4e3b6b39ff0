"""The engine interfaces of the bus, Centrifuge style: small protocols with stated guarantees.

- `Broker`: publish to a user's ordered stream or to an ephemeral topic; deliver to every node.
- `UserLog`: the per-user ordered log a session resumes from.
- `Presence`: which users have a live session on some node.
- `SessionStore`: gateway session records, so a session resumes on any node.
- `RevocationStore`: which sign-in sessions (refresh-token families) of a user were revoked, so
  their access tokens are refused on every node without a database read.
- `TicketStore`: short-lived single-use records (SSE stream tickets), redeemable on any node.
- `Bus`: all five plus a lifecycle; what an engine implements and what `ctx.bus` is.

Two engines implement `Bus` side by side with the same method names: `MemoryBus`
(server/bus/memory.py, one node, the embedded default) and `RedisBus` (server/bus/redis.py, any
number of nodes). Type a consumer against the smallest protocol it needs (domain code that asks
who is online takes a `Presence`; code that publishes takes a `Broker`). Domain code normally
publishes through the event sink (`ctx.events`, transactional outbox), not the broker directly.

The guarantees stated on each method are the ones both engines keep (tests/test_bus.py runs
the contract on both); where the engines differ, the method says how.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(slots=True)
class UserEvent:
    """One event in a user's ordered log: `seq` is per user, shared by all devices and nodes,
    and counts within `epoch` (the log's identity: a log that lost its history gets a new one,
    and its seqs start again at 1)."""

    user_id: uuid.UUID
    seq: int
    type: str
    data: dict[str, Any]
    published_at: float = field(default=0.0)
    # `data` already encoded as JSON, when the engine has it (saves re-encoding on fan-out).
    data_json: bytes | None = field(default=None, repr=False)
    epoch: str = field(default="")


@dataclass(slots=True)
class TopicEvent:
    """An ephemeral event on a public live topic (`post:<id>`, `poll:<id>`, `group:<id>`)."""

    topic: str
    type: str
    data: dict[str, Any]
    published_at: float = field(default=0.0)
    data_json: bytes | None = field(default=None, repr=False)


UserListener = Callable[[UserEvent], Awaitable[None] | None]
TopicListener = Callable[[TopicEvent], Awaitable[None] | None]
# Called when a node may have missed deliveries (e.g. its Redis subscription reconnected).
ResyncListener = Callable[[], Awaitable[None] | None]


class Broker(Protocol):
    """Publishing and fan-out to every node.

    Listeners are plain lists the gateway appends to (and removes from). A listener may be a
    function or a coroutine function; it is awaited before the next delivery, so one node sees
    one user's events in `seq` order and one publisher's topic events in publish order. User
    and topic events travel separately: their relative order is not kept. A listener that
    raises is logged and the next listener runs, on both engines: the event is published (it
    is in the log), so a publisher never retries, and duplicates, what a listener failed on.
    """

    # This process's identity on the bus (the outbox records which node must publish a row).
    node_id: str
    user_listeners: list[UserListener]
    topic_listeners: list[TopicListener]
    resync_listeners: list[ResyncListener]

    async def publish_user(
        self, user_ids: Iterable[uuid.UUID], type: str, data: dict[str, Any]
    ) -> list[UserEvent]:
        """Append one event to the log of each distinct user (duplicates collapse, first
        occurrence order) and deliver it to `user_listeners` on every node; return the events.

        - Sequence: each user's event gets that user's last seq + 1: strictly increasing and
          gapless per user, across every node sharing the engine, never reused within an
          epoch. Concurrent publishes to one user get distinct consecutive seqs.
        - Epoch: the identity of the user's log. When the engine loses the counter (memory: a
          new process; Redis: a restart without persistence, a flush, a failover to a replica
          that had not caught up, an eviction) the next publish or `log_position` starts a new
          epoch at seq 0 (and drops any leftover log), so (epoch, seq) is never reused.
        - Atomicity: all users of one call are logged before any is announced. Memory: no await
          between assigning seqs and logging, then listeners run in the caller's task, in
          order, before this returns. Redis: one Lua script (atomic: no other command runs
          meanwhile) does, per user, INCR seq + XADD to the log stream (MAXLEN ~ depth, EXPIRE
          log age) + PUBLISH on the user channel, so the log holds an event before any node
          can act on its announcement; delivery (this node included) is asynchronous, through
          the subscription.
        - Delivery is at most once per node: a node whose subscription drops misses events
          (then `resync_listeners` run and sessions catch up from the log).
        - Not idempotent: a retry after a lost reply (Redis) publishes again with new seqs.
        - `type` must not contain spaces or newlines (Redis raises ValueError); `data` must be
          JSON-serialisable (Redis encodes it; listeners then get decoded data + data_json).
        - No users: returns [] without touching the engine.
        """
        ...

    async def publish_topic(self, topic: str, type: str, data: dict[str, Any]) -> None:
        """Deliver an ephemeral event to `topic_listeners` on every node: no seq, no log.

        At most once (Redis pub/sub: a node not subscribed at that moment misses it); events of
        one awaited-in-sequence publisher arrive in order on each node. Memory: listeners run in
        the caller's task before this returns. `topic` and `type` must not contain newlines
        (Redis raises ValueError).
        """
        ...


class UserLog(Protocol):
    """The per-user ordered event log sessions resume from (written only by `publish_user`)."""

    async def events_after(
        self, user_id: uuid.UUID, seq: int, epoch: str | None = None
    ) -> list[UserEvent] | None:
        """The user's events with a seq above `seq`, in seq order and gapless, or None when the
        log no longer holds them all.

        - None when `epoch` is given and is not the log's current epoch (the history the
          cursor counts in is gone: the caller tells the client, which refetches over HTTP).

        - [] when `seq` >= `last_seq` (an unknown user: [] for any seq >= 0). A `seq` above
          `last_seq` means the client saw a history the engine lost; callers compare with
          `last_seq` first (the gateway closes with INVALID_SEQ / answers invalid_session).
        - None when event `seq + 1` is gone: trimmed by the log depth (memory: exactly the
          last `log_depth` events; Redis: MAXLEN ~, at least that many), older than the log age
          (`log_age_s`, checked on the first event returned; Redis also expires an idle log),
          or lost (Redis restart, eviction).
        - A snapshot, not a subscription: events published meanwhile may or may not be
          included (Redis reads the counter and the stream in one non-transactional pipeline;
          both are written by one atomic script, so nothing counted is missing from the log).
          A caller that also listens drops what it already delivered by seq.
        """
        ...

    async def log_position(self, user_id: uuid.UUID) -> tuple[str, int]:
        """The log's current (epoch, last seq). A user without a log gets one (a new epoch at
        seq 0), so a cursor handed to a client is always pinned to an epoch. Atomic."""
        ...

    async def last_seq(self, user_id: uuid.UUID) -> int:
        """The seq of the user's latest event; 0 if none was ever published (or the engine
        lost its counter). One read: Redis GET, memory a dict lookup."""
        ...

    async def last_seqs(self, user_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, int]:
        """`last_seq` of many users in one round trip (Redis: one MGET, a consistent snapshot
        of all of them); 0 for unknown users."""
        ...


class Presence(Protocol):
    """Which users have a live session, across devices and nodes.

    The gateway calls `presence_join` on a node's first live session of a user and
    `presence_leave` on its last (so it keeps one membership per node), and
    `presence_refresh` for every user it holds, every presence_ttl_s / 3.
    """

    async def online_users(self, user_ids: Iterable[uuid.UUID]) -> set[uuid.UUID]:
        """Which of these users have at least one live session on any node.

        Memory: joined and not left on this process. Redis: at least one node membership not
        yet expired (a crashed node's users stay online until presence_ttl_s passes without a
        refresh); one pipelined round trip, each user's answer read on its own (not a snapshot
        across users).
        """
        ...

    async def presence_join(self, user_id: uuid.UUID) -> bool:
        """This node gained its first live session of `user_id`. True if the user was offline
        everywhere before (so an `online` presence event is due).

        Atomic: of concurrent first joins (on any nodes) exactly one returns True. Memory: a
        per-user join counter (True when it was 0). Redis: one MULTI/EXEC: drop expired
        memberships, count the live ones, add this node's with expiry now + presence_ttl_s.
        """
        ...

    async def presence_leave(self, user_id: uuid.UUID) -> bool:
        """This node lost its last live session of `user_id`. True if the user is now offline
        everywhere (so an `offline` presence event is due).

        Atomic: of concurrent last leaves exactly one returns True. Memory: decrements the
        join counter, True when it reaches 0. Redis: one MULTI/EXEC: remove this node's
        membership, drop expired ones, True if this node was a member and none is left.
        A leave without a matching join: memory True, Redis False (the gateway never does it).
        """
        ...

    async def presence_refresh(self, user_ids: Iterable[uuid.UUID]) -> None:
        """Keep this node's memberships of these users alive for another presence_ttl_s.

        Redis: re-scores this node's membership (adding it if it expired, which marks the user
        online again) in pipelines of 1000 users, not atomic across users. Memory: nothing to
        do (presence lives as long as the process).
        """
        ...


class SessionStore(Protocol):
    """Gateway session records (user, topics, watched users), so a session resumes on any node.
    Store JSON values only (strings, not UUIDs): Redis returns a decoded copy, memory the very
    object saved, and both must read the same."""

    async def save_session(self, session_id: str, record: dict[str, Any], ttl_s: float) -> None:
        """Create or overwrite the record (last write wins), kept for `ttl_s` from now (Redis:
        whole seconds, at least 1; memory: on the monotonic clock). One write."""
        ...

    async def load_session(self, session_id: str) -> dict[str, Any] | None:
        """The last saved record, or None if there is none or its ttl passed."""
        ...


class RevocationStore(Protocol):
    """Revoked sign-in sessions (refresh-token families, the `sid` claim of access tokens).

    Written after the revoking transaction commits (the event sink does it, retried through
    the outbox, before it tells the gateways to close the sessions' sockets), read by the
    per-process cache in server/domain/sessions.py. An entry only needs to outlive the access
    tokens of its session: after `ttl_s` they have all expired anyway.
    """

    async def revoke_sessions(
        self, user_id: uuid.UUID, session_ids: Iterable[str], ttl_s: float
    ) -> None:
        """Add `session_ids` to the user's revoked set, kept at least `ttl_s` from now (Redis:
        one hash per user whose expiry is pushed out by each revocation; memory: per entry)."""
        ...

    async def revoked_sessions(self, user_id: uuid.UUID) -> frozenset[str]:
        """The user's revoked session ids still within their ttl. One read (Redis HKEYS)."""
        ...


class TicketStore(Protocol):
    """Single-use records with a short lifetime (SSE stream tickets): put once, taken at most
    once, on any node. JSON values only, as for SessionStore."""

    async def put_ticket(self, key: str, record: dict[str, Any], ttl_s: float) -> None:
        """Store `record` under `key` for `ttl_s` from now (Redis: milliseconds, at least 1;
        memory: the monotonic clock). One write; a second put under a key overwrites it."""
        ...

    async def take_ticket(self, key: str) -> dict[str, Any] | None:
        """The record, removed in the same step, or None if there is none (never put, already
        taken, or its ttl passed). Atomic: of concurrent takes of one key, on any nodes,
        exactly one gets the record (Redis: GETDEL, one command)."""
        ...


class Bus(Broker, UserLog, Presence, SessionStore, RevocationStore, TicketStore, Protocol):
    """What an engine implements (MemoryBus, RedisBus) and the composition root builds: every
    protocol above plus the engine's lifecycle."""

    async def start(self) -> None:
        """Connect; once it returns, this node receives every later publish (Redis: the
        subscription is up)."""
        ...

    async def close(self) -> None:
        """Stop delivering and release connections."""
        ...

    async def ping(self) -> None:
        """Raise unless the engine can publish and this node receives deliveries right now
        (Redis: a PING answered and the subscription up; memory: always fine). Readiness."""
        ...


def parse_user_id(value: Any) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
