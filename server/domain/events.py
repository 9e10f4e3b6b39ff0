"""The event sink: the one way events leave a transaction (`ctx.events`).

A domain action stages its events in the transaction of its writes:

    async with ctx.db.transaction() as tx:
        ...writes...
        ctx.events.to_users(tx, [recipient_id], "message.created", view)
        ctx.events.to_topic(tx, f"group:{group_id}", "group.updated", card)
        ctx.events.end_sessions(tx, user_id, "password changed")

Guarantees:
- Atomicity: events staged in a transaction that rolls back are never published. Events of a
  committed transaction are published at least once: the transaction's outbox row is written
  in the same round trip as its COMMIT; after COMMIT this process publishes them (retrying a
  failing bus with backoff) and deletes the row. If the process dies (or the bus stays down)
  before that, the row outlives `events.republish_after_s` and the sweeper of any node
  republishes it. A repeat is possible after an ambiguous failure; clients deduplicate by the
  entity id in the event.
- Ordering: the events of one transaction are published in the order they were staged.
  Publishing is awaited when the transaction block exits, so an action that serialises its
  transactions on a key (messaging holds a `Linearizer` slot per conversation around its
  transaction) has that key's events published in commit order. A republished row can arrive
  after newer events: events carry their entity's own order (a message's `seq`).
- Control: `end_sessions` reaches every gateway node (it travels as a topic event on the
  user's control topic) and closes that user's live sessions there.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import orjson

from protocol.constants import CloseCode
from server.bus.base import Bus, parse_user_id
from server.ids import new_id
from server.store import outbox as outbox_store
from server.store.db import Database, Transaction

log = logging.getLogger(__name__)

CONTROL_TOPIC_PREFIX = "gateway:"  # gateway:<user_id>: control messages to every node
DISCONNECT = "disconnect"
# Control: re-ask the topic authorizers for a user's live subscriptions (after a block).
TOPICS_RECHECK = "topics.recheck"
_STAGED = "events.staged"
PUBLISH_BACKOFF_S = (0.01, 0.05, 0.2, 0.5, 1.0)
# A row whose republish failed this often (about 10 minutes of failures at the default
# cadence) is given up on, loudly, so it cannot block the queue.
MAX_REPUBLISH_ATTEMPTS = 50
# Test-only fault injection: exit the process right after a COMMIT that staged an event of
# this type, before publishing it (tests/test_events_outbox.py proves the outbox recovers).
CRASH_AFTER_COMMIT_ENV = "NEXGATE_FAULT_CRASH_AFTER_COMMIT"


def control_topic(user_id: uuid.UUID | str) -> str:
    return f"{CONTROL_TOPIC_PREFIX}{user_id}"


@dataclass(slots=True)
class _Staged:
    id: uuid.UUID
    events: list[dict[str, Any]] = field(default_factory=list)


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    raise TypeError(f"cannot serialise {type(value).__name__} in an event")


def _as_json(events: list[dict[str, Any]]) -> str:
    # Encoded once (orjson) and sent as text cast to jsonb: no second encoder pass.
    return orjson.dumps(events, default=_default, option=orjson.OPT_NON_STR_KEYS).decode()


class EventSink:
    def __init__(
        self,
        db: Database,
        bus: Bus,
        *,
        republish_after_s: float = 10.0,
        sweep_interval_s: float = 2.0,
        publish_attempts: int = len(PUBLISH_BACKOFF_S) + 1,
    ) -> None:
        self.db = db
        self.bus = bus
        self.republish_after_s = republish_after_s
        self.sweep_interval_s = sweep_interval_s
        self.publish_attempts = publish_attempts
        self._published: list[uuid.UUID] = []
        self._flush_wakeup = asyncio.Event()
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._crash_after = os.environ.get(CRASH_AFTER_COMMIT_ENV) or None
        self.republished = 0

    # -- staging ---------------------------------------------------------------------------

    def to_users(
        self, tx: Transaction, user_ids: Iterable[uuid.UUID], type: str, data: dict[str, Any]
    ) -> None:
        """Each user gets the event in their ordered log (next `s`), on every device."""
        recipients = list(dict.fromkeys(map(parse_user_id, user_ids)))
        if recipients:
            self._stage(tx, {"k": "u", "to": recipients, "t": type, "d": data})

    def to_topic(self, tx: Transaction, topic: str, type: str, data: dict[str, Any]) -> None:
        """Subscribers of a live topic (`group:<id>`, `post:<id>`, ...) get the event."""
        self._stage(tx, {"k": "t", "to": topic, "t": type, "d": data})

    def end_sessions(
        self,
        tx: Transaction,
        user_id: uuid.UUID,
        reason: str = "session revoked",
        code: int = CloseCode.AUTHENTICATION_FAILED,
        *,
        session_ids: Iterable[uuid.UUID] | None = None,
        revoke_for_s: float = 0,
    ) -> None:
        """Close live sessions of `user_id` on every node once `tx` commits: all of them, or
        only those signed in as one of `session_ids` (refresh-token families). With
        `revoke_for_s`, those sessions are first recorded as revoked in the bus for that long
        (their access tokens are refused from then on: server/domain/sessions.py); the record
        is written before any node is told, so a node that reloads on the notice sees it."""
        data: dict[str, Any] = {"user_id": str(user_id), "reason": reason, "code": int(code)}
        if session_ids is not None:
            sessions = [str(s) for s in session_ids]
            if not sessions:
                return
            data["sessions"] = sessions
            if revoke_for_s > 0:
                self._stage(
                    tx, {"k": "r", "to": str(user_id), "sessions": sessions, "ttl": revoke_for_s}
                )
        self.to_topic(tx, control_topic(user_id), DISCONNECT, data)

    def recheck_topics(self, tx: Transaction, user_ids: Iterable[uuid.UUID]) -> None:
        """Once `tx` commits, every node asks the topic authorizers again for these users' live
        topic subscriptions (sockets and SSE streams) and silently drops those now refused: a
        block ends a `group:<id>` subscription made before it, as it ends presence."""
        for user_id in user_ids:
            self.to_topic(tx, control_topic(user_id), TOPICS_RECHECK, {"user_id": str(user_id)})

    async def ephemeral_to_users(
        self, user_ids: Iterable[uuid.UUID], type: str, data: dict[str, Any]
    ) -> None:
        """An event of no write (typing): published at once, best effort, never recorded in
        the outbox (there is no commit to tie it to, and it is worthless a few seconds later).
        It still takes the next `s` in each user's ordered log."""
        recipients = list(dict.fromkeys(map(parse_user_id, user_ids)))
        if recipients:
            await self._publish([{"k": "u", "to": recipients, "t": type, "d": data}])

    async def ephemeral_to_topic(self, topic: str, type: str, data: dict[str, Any]) -> None:
        """A topic event of no one write (coalesced live counters): published at once, best
        effort, never recorded in the outbox; the next one carries fresher numbers anyway."""
        await self._publish([{"k": "t", "to": topic, "t": type, "d": data}])

    def _stage(self, tx: Transaction, event: dict[str, Any]) -> None:
        staged: _Staged | None = tx.local.get(_STAGED)
        if staged is None:
            staged = tx.local[_STAGED] = _Staged(new_id())
            batch = staged
            tx.with_commit(
                lambda: outbox_store.insert_statement(
                    batch.id, self.bus.node_id, _as_json(batch.events)
                )
            )
            tx.after_commit(lambda: self._after_commit(batch))
        staged.events.append(event)

    # -- publishing ------------------------------------------------------------------------

    async def _after_commit(self, staged: _Staged) -> None:
        if self._crash_after and any(e.get("t") == self._crash_after for e in staged.events):
            log.warning("fault injection: exiting between commit and publish")
            os._exit(70)
        # Give up well before the sweepers take over, so a row is never published by this node
        # and a sweeper at the same time.
        deadline = asyncio.get_running_loop().time() + self.republish_after_s / 2
        if await self._publish(staged.events, deadline):
            self._published.append(staged.id)
            if self._tasks:
                self._flush_wakeup.set()
            else:  # not started (a one-off command): no flusher, delete now
                await self.flush()

    async def _publish(self, events: list[dict[str, Any]], deadline: float | None = None) -> bool:
        """Publish in order, each event retried with backoff (until `deadline`, loop time).
        False (row left for the sweeper) if the bus kept failing."""
        loop = asyncio.get_running_loop()
        for event in events:
            for attempt in range(self.publish_attempts):
                try:
                    if event["k"] == "u":
                        await self.bus.publish_user(event["to"], event["t"], event["d"])
                    elif event["k"] == "r":
                        await self.bus.revoke_sessions(
                            uuid.UUID(event["to"]), event["sessions"], event["ttl"]
                        )
                    else:
                        await self.bus.publish_topic(event["to"], event["t"], event["d"])
                    break
                except Exception:
                    pause = PUBLISH_BACKOFF_S[min(attempt, len(PUBLISH_BACKOFF_S) - 1)]
                    out_of_time = deadline is not None and loop.time() + pause > deadline
                    if attempt == self.publish_attempts - 1 or out_of_time:
                        log.warning(
                            "event not published; the outbox sweeper will retry",
                            exc_info=True,
                            extra={"type": event.get("t", event["k"])},
                        )
                        return False
                    await asyncio.sleep(pause)
        return True

    async def flush(self) -> None:
        """Delete the outbox rows of published transactions (batched: one DELETE for many)."""
        while self._published:
            ids, self._published = self._published[:1000], self._published[1000:]
            try:
                await outbox_store.delete(self.db, ids)
            except Exception:
                # Kept for the next flush; if this process ends first, the rows are
                # republished later: a repeat, never a loss.
                self._published[:0] = ids
                log.warning("outbox rows not deleted", exc_info=True)
                return

    async def sweep_once(self, limit: int = 100) -> int:
        """Republish rows whose node did not (it died, or its bus was down), one row per
        transaction, oldest first; returns how many rows were handled. A row that fails goes
        to the back of the queue (attempts + 1) and, past MAX_REPUBLISH_ATTEMPTS, is dropped
        with an error in the log rather than blocking the rows behind it forever."""
        handled = 0
        while handled < limit:
            async with self.db.transaction() as tx:
                rows = await outbox_store.claim_stale(tx, self.republish_after_s, 1)
                if not rows:
                    break
                row = rows[0]
                try:
                    events = [_decoded(e) for e in orjson.loads(row["events"])]
                except (ValueError, TypeError, KeyError):
                    # Can never be published (not written by this sink): drop it, loudly.
                    await outbox_store.delete(tx, [row["id"]])
                    log.error("unreadable outbox row dropped", extra={"row": str(row["id"])})
                    handled += 1
                    continue
                if await self._publish(events):
                    await outbox_store.delete(tx, [row["id"]])
                    self.republished += 1
                elif row["attempts"] + 1 >= MAX_REPUBLISH_ATTEMPTS:
                    await outbox_store.delete(tx, [row["id"]])
                    log.error(
                        "outbox row dropped after repeated republish failures",
                        extra={
                            "row": str(row["id"]),
                            "types": [e.get("t", e["k"]) for e in events],
                        },
                    )
                else:
                    await outbox_store.postpone(tx, row["id"])
                    return handled  # the bus is likely down: try again next sweep
            handled += 1
        if handled:
            log.info("outbox rows republished", extra={"rows": handled})
        return handled

    # -- lifecycle -------------------------------------------------------------------------

    def start(self, *, sweep: bool = True) -> None:
        self._tasks.append(asyncio.create_task(self._flush_forever()))
        if sweep:
            self._tasks.append(asyncio.create_task(self._sweep_forever()))

    async def close(self) -> None:
        """Stop the loops, then delete what was published meanwhile. The loops are asked to
        stop and given a bound, never cancelled and awaited unboundedly: cancelling a task that
        awaits aiopg can be swallowed (asyncio.wait_for in Python 3.11), which would hang."""
        self._stopping.set()
        self._flush_wakeup.set()
        if self._tasks:
            _, pending = await asyncio.wait(self._tasks, timeout=5)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=2)
        self._tasks.clear()
        await self.flush()

    async def _flush_forever(self) -> None:
        while not self._stopping.is_set():
            await self._flush_wakeup.wait()
            if self._stopping.is_set():
                return  # close() flushes once the loops are done
            await asyncio.sleep(0.05)  # gather the deletes of concurrent commits
            self._flush_wakeup.clear()
            await self.flush()

    async def _sweep_forever(self) -> None:
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.sweep_interval_s)
            if self._stopping.is_set():
                return
            try:
                while not self._stopping.is_set() and await self.sweep_once() > 0:
                    pass
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("outbox sweep failed; retrying", exc_info=True)


def _decoded(event: dict[str, Any]) -> dict[str, Any]:
    if event["k"] == "u":
        return {**event, "to": [uuid.UUID(u) for u in event["to"]]}
    return event
