"""The multi-node engine on Redis (implements `Bus`, server/bus/base.py, with its guarantees).

- Per-user sequence: a hash ``{prefix}useq:<user>`` {e: epoch, n: last seq} (``HINCRBY n``);
  the resume log: a stream per user ``{prefix}log:<user>`` (entry id ``<seq>-0``,
  ``MAXLEN ~ depth``, expiring after the log age); fan-out: ``PUBLISH {prefix}ev:user``. One Lua
  script does all three per user atomically, so every node sees a user's events in `s` order and
  the log always holds what was announced. A missing hash (Redis restarted without persistence,
  flushed, failed over, evicted) means the history is gone: the script starts a new epoch at
  seq 0 and drops any leftover stream, so (epoch, seq) is never reused.
- Topics: ``PUBLISH {prefix}ev:topic`` (ephemeral, no log).
- Presence: a sorted set per user ``{prefix}pres:<user>`` of node ids scored by expiry; a node
  refreshes its members every ttl/3; a user is online while any member has not expired (a
  crashed node's sessions expire within `presence_ttl_s`).
- Sessions (for resume on any node): ``{prefix}sess:<id>`` JSON with a TTL.

Every node subscribes to the two channels and filters locally, which keeps subscriptions
constant whatever the number of users; fine for a handful of nodes (see PROTOCOL.md, Scaling).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
import uuid
from collections.abc import Iterable
from typing import Any

import orjson
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from protocol.codec import json_dumps
from server.bus.base import (
    ResyncListener,
    TopicEvent,
    TopicListener,
    UserEvent,
    UserListener,
)
from server.ops_metrics import timed

log = logging.getLogger("nexgate.bus")

_PUBLISH_USER = """
local n = #KEYS / 2
local out = {}
for i = 1, n do
  local counter, stream = KEYS[2 * i - 1], KEYS[2 * i]
  local epoch = redis.call('HGET', counter, 'e')
  if not epoch then
    epoch = ARGV[7]
    redis.call('HSET', counter, 'e', epoch, 'n', 0)
    redis.call('DEL', stream)
  end
  local seq = redis.call('HINCRBY', counter, 'n', 1)
  redis.call('XADD', stream, 'MAXLEN', '~', ARGV[4], seq .. '-0',
             't', ARGV[1], 'd', ARGV[2], 'ts', ARGV[3])
  redis.call('EXPIRE', stream, ARGV[5])
  redis.call('PUBLISH', ARGV[6], ARGV[7 + i] .. ' ' .. epoch .. ' ' .. seq .. ' ' .. ARGV[3]
             .. ' ' .. ARGV[1] .. '\\n' .. ARGV[2])
  out[i] = {epoch, seq}
end
return out
"""

_LOG_POSITION = """
local epoch = redis.call('HGET', KEYS[1], 'e')
if not epoch then
  epoch = ARGV[1]
  redis.call('HSET', KEYS[1], 'e', epoch, 'n', 0)
  redis.call('DEL', KEYS[2])
end
return {epoch, redis.call('HGET', KEYS[1], 'n')}
"""


def new_epoch() -> str:
    """A fresh epoch name: time-ordered (ms) and random, short enough for every frame."""
    return f"{int(time.time() * 1000):x}{secrets.token_hex(3)}"


async def _notify(listeners: list, event: Any) -> None:
    for listener in listeners:
        try:
            result = listener(event)
            if result is not None:
                await result
        except Exception:
            log.exception("bus listener failed")


class RedisBus:
    def __init__(
        self,
        url: str,
        log_depth: int = 1000,
        log_age_s: float = 3600,
        *,
        prefix: str = "ng:",
        presence_ttl_s: float = 90,
    ) -> None:
        self.url = url
        self.prefix = prefix
        self.node_id = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        self._log_depth = max(1, log_depth)
        self._log_age_s = int(log_age_s)
        self._presence_ttl_s = float(presence_ttl_s)
        # A blocking pool: at its cap, callers wait for a connection instead of failing with
        # "Too many connections" (which lost events after commit under reconnect storms).
        # After a Redis restart every pooled connection is dead: a health check (PING on a
        # connection idle for longer than the interval) and a retry with backoff on connection
        # errors replace them quietly instead of failing one request per stale connection.
        self.redis: aioredis.Redis = aioredis.Redis.from_pool(
            aioredis.BlockingConnectionPool.from_url(
                url,
                decode_responses=False,
                max_connections=200,
                timeout=10,
                socket_connect_timeout=5,
                socket_timeout=10,
                health_check_interval=5,
                # Two quick retries: enough to replace a stale connection, short enough that
                # an outage fails fast (callers degrade) instead of stalling each request.
                retry=Retry(ExponentialBackoff(cap=0.25, base=0.02), 2),
                retry_on_error=[RedisConnectionError, RedisTimeoutError, OSError],
            )
        )
        # The subscription blocks reading for as long as the channels are quiet: its own
        # client, without a read timeout (the pool's would end an idle subscription).
        self._subscriber: aioredis.Redis = aioredis.Redis.from_url(
            url,
            decode_responses=False,
            socket_connect_timeout=5,
            health_check_interval=5,
        )
        self._script = self.redis.register_script(_PUBLISH_USER)
        self._position_script = self.redis.register_script(_LOG_POSITION)
        self._user_channel = f"{prefix}ev:user".encode()
        self._topic_channel = f"{prefix}ev:topic".encode()
        self._reader: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()
        self.user_listeners: list[UserListener] = []
        self.topic_listeners: list[TopicListener] = []
        self.resync_listeners: list[ResyncListener] = []

    # keys ---------------------------------------------------------------------------------

    def _seq_key(self, user_id: uuid.UUID) -> str:
        return f"{self.prefix}useq:{user_id}"

    def _log_key(self, user_id: uuid.UUID) -> str:
        return f"{self.prefix}log:{user_id}"

    def _presence_key(self, user_id: uuid.UUID) -> str:
        return f"{self.prefix}pres:{user_id}"

    def _session_key(self, session_id: str) -> str:
        return f"{self.prefix}sess:{session_id}"

    def _revoked_key(self, user_id: uuid.UUID) -> str:
        return f"{self.prefix}revoked:{user_id}"

    def _ticket_key(self, key: str) -> str:
        return f"{self.prefix}ticket:{key}"

    # lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        self._reader = asyncio.create_task(self._listen(), name="redis-bus-listener")
        await asyncio.wait_for(self._subscribed.wait(), 10)

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader
        await self.redis.aclose()
        await self._subscriber.aclose()

    async def ping(self) -> None:
        await timed("redis", "ping", self.redis.ping())
        if not self._subscribed.is_set():
            raise ConnectionError("the bus subscription is down (reconnecting)")

    async def _listen(self) -> None:
        backoff = 0.1
        first = True
        while True:
            pubsub = self._subscriber.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self._user_channel, self._topic_channel)
                self._subscribed.set()
                if not first:  # deliveries may have been missed while we were away
                    log.warning("redis bus resubscribed; resyncing sessions")
                    for listener in self.resync_listeners:
                        result = listener()
                        if result is not None:
                            await result
                first = False
                backoff = 0.1
                while True:
                    message = await pubsub.get_message(timeout=None)
                    if message is None or message.get("type") != "message":
                        continue
                    await self._dispatch(message["channel"], message["data"])
            except asyncio.CancelledError:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
                raise
            except Exception as exc:
                self._subscribed.clear()
                log.warning("redis bus subscription lost (%s); retrying in %.1fs", exc, backoff)
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
                await asyncio.sleep(backoff)
                backoff = min(5.0, backoff * 2)

    async def _dispatch(self, channel: bytes, raw: bytes) -> None:
        try:
            if channel == self._user_channel:
                header, _, data_json = raw.partition(b"\n")
                uid, epoch, seq, ts, type_ = header.decode().split(" ", 4)
                event: Any = UserEvent(
                    uuid.UUID(uid),
                    int(seq),
                    type_,
                    orjson.loads(data_json),
                    float(ts),
                    data_json,
                    epoch,
                )
                listeners: list = self.user_listeners
            else:
                topic, topic_type, topic_ts, data_json = raw.split(b"\n", 3)
                event = TopicEvent(
                    topic.decode(),
                    topic_type.decode(),
                    orjson.loads(data_json),
                    float(topic_ts),
                    data_json,
                )
                listeners = self.topic_listeners
        except (ValueError, orjson.JSONDecodeError):
            log.warning("undecodable bus message on %r", channel)
            return
        await _notify(listeners, event)

    # publishing ---------------------------------------------------------------------------

    async def publish_user(
        self, user_ids: Iterable[uuid.UUID], type: str, data: dict[str, Any]
    ) -> list[UserEvent]:
        users = list(dict.fromkeys(user_ids))
        if not users:
            return []
        if "\n" in type or " " in type:
            raise ValueError("an event type may not contain spaces or newlines")
        data_json = json_dumps(data)
        now = time.time()
        keys: list[str] = []
        for user_id in users:
            keys += [self._seq_key(user_id), self._log_key(user_id)]
        args: list[bytes | str | int] = [
            type,
            data_json,
            repr(now),
            self._log_depth,
            self._log_age_s,
            self._user_channel,
            new_epoch(),
            *(str(u) for u in users),
        ]
        positions = await timed("redis", "publish_user", self._script(keys=keys, args=args))
        return [
            UserEvent(u, int(seq), type, data, now, data_json, epoch.decode())
            for u, (epoch, seq) in zip(users, positions, strict=True)
        ]

    async def publish_topic(self, topic: str, type: str, data: dict[str, Any]) -> None:
        if "\n" in topic or "\n" in type:
            raise ValueError("a topic or event type may not contain newlines")
        payload = b"%b\n%b\n%b\n%b" % (
            topic.encode(),
            type.encode(),
            repr(time.time()).encode(),
            json_dumps(data),
        )
        await timed("redis", "publish_topic", self.redis.publish(self._topic_channel, payload))

    # the log ------------------------------------------------------------------------------

    async def events_after(
        self, user_id: uuid.UUID, seq: int, epoch: str | None = None
    ) -> list[UserEvent] | None:
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hmget(self._seq_key(user_id), ["e", "n"])
            pipe.xrange(self._log_key(user_id), min=f"{seq + 1}-0", max="+")
            (epoch_raw, last_raw), entries = await timed("redis", "events_after", pipe.execute())
        current = epoch_raw.decode() if epoch_raw is not None else None
        if epoch is not None and epoch != current:
            return None
        last = int(last_raw or 0)
        if seq >= last:
            return []
        if not entries or entries[0][0] != f"{seq + 1}-0".encode():
            return None
        horizon = time.time() - self._log_age_s
        events = []
        expected = seq + 1
        for entry_id, fields in entries:
            n = int(entry_id.split(b"-", 1)[0])
            if n != expected:
                return None
            expected += 1
            ts = float(fields[b"ts"])
            if n == seq + 1 and ts < horizon:
                return None
            data_json = fields[b"d"]
            events.append(
                UserEvent(
                    user_id,
                    n,
                    fields[b"t"].decode(),
                    orjson.loads(data_json),
                    ts,
                    data_json,
                    current or "",
                )
            )
        return events

    async def log_position(self, user_id: uuid.UUID) -> tuple[str, int]:
        epoch, last = await timed(
            "redis",
            "log_position",
            self._position_script(
                keys=[self._seq_key(user_id), self._log_key(user_id)], args=[new_epoch()]
            ),
        )
        return epoch.decode(), int(last or 0)

    async def last_seq(self, user_id: uuid.UUID) -> int:
        return int(await self.redis.hget(self._seq_key(user_id), "n") or 0)

    async def last_seqs(self, user_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, int]:
        users = list(user_ids)
        if not users:
            return {}
        async with self.redis.pipeline(transaction=True) as pipe:
            for user_id in users:
                pipe.hget(self._seq_key(user_id), "n")
            values = await pipe.execute()
        return {u: int(v or 0) for u, v in zip(users, values, strict=True)}

    # presence -----------------------------------------------------------------------------

    async def online_users(self, user_ids: Iterable[uuid.UUID]) -> set[uuid.UUID]:
        users = list(dict.fromkeys(user_ids))
        if not users:
            return set()
        now = time.time()
        async with self.redis.pipeline(transaction=False) as pipe:
            for user_id in users:
                pipe.zcount(self._presence_key(user_id), f"({now}", "+inf")
            counts = await pipe.execute()
        return {u for u, n in zip(users, counts, strict=True) if n}

    async def presence_join(self, user_id: uuid.UUID) -> bool:
        key, now = self._presence_key(user_id), time.time()
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zremrangebyscore(key, "-inf", now)
            pipe.zcard(key)
            pipe.zadd(key, {self.node_id: now + self._presence_ttl_s})
            pipe.expire(key, int(self._presence_ttl_s) + 1)
            _, before, _, _ = await pipe.execute()
        return before == 0

    async def presence_leave(self, user_id: uuid.UUID) -> bool:
        key, now = self._presence_key(user_id), time.time()
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zrem(key, self.node_id)
            pipe.zremrangebyscore(key, "-inf", now)
            pipe.zcard(key)
            removed, _, after = await pipe.execute()
        return bool(removed) and after == 0

    async def presence_refresh(self, user_ids: Iterable[uuid.UUID]) -> None:
        users = list(user_ids)
        expires = time.time() + self._presence_ttl_s
        ttl = int(self._presence_ttl_s) + 1
        for start in range(0, len(users), 1000):
            async with self.redis.pipeline(transaction=False) as pipe:
                for user_id in users[start : start + 1000]:
                    key = self._presence_key(user_id)
                    pipe.zadd(key, {self.node_id: expires})
                    pipe.expire(key, ttl)
                await pipe.execute()

    # sessions -----------------------------------------------------------------------------

    async def save_session(self, session_id: str, record: dict[str, Any], ttl_s: float) -> None:
        await self.redis.set(
            self._session_key(session_id), orjson.dumps(record), ex=max(1, int(ttl_s))
        )

    async def load_session(self, session_id: str) -> dict[str, Any] | None:
        raw = await self.redis.get(self._session_key(session_id))
        return None if raw is None else orjson.loads(raw)

    async def revoke_sessions(
        self, user_id: uuid.UUID, session_ids: Iterable[str], ttl_s: float
    ) -> None:
        ids = [str(s) for s in session_ids]
        if not ids:
            return
        key = self._revoked_key(user_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping=dict.fromkeys(ids, 1))
            # GT: never shorten what an earlier revocation asked for. Every field lives as long
            # as the newest one: more than needed, never less.
            pipe.expire(key, max(1, int(ttl_s) + 1), gt=True)
            pipe.expire(key, max(1, int(ttl_s) + 1), nx=True)
            await pipe.execute()

    async def revoked_sessions(self, user_id: uuid.UUID) -> frozenset[str]:
        keys = await self.redis.hkeys(self._revoked_key(user_id))
        return frozenset(k.decode() if isinstance(k, bytes) else str(k) for k in keys)

    # tickets ------------------------------------------------------------------------------

    async def put_ticket(self, key: str, record: dict[str, Any], ttl_s: float) -> None:
        await self.redis.set(
            self._ticket_key(key), orjson.dumps(record), px=max(1, int(ttl_s * 1000))
        )

    async def take_ticket(self, key: str) -> dict[str, Any] | None:
        raw = await self.redis.getdel(self._ticket_key(key))
        return None if raw is None else orjson.loads(raw)
