"""Home timelines in Redis sorted sets (the timeline engine when the Redis bus is configured;
the interface and its guarantees: server/domain/feeds/timelines.py).

One sorted set per reader, ``{prefix}tl:<user>``: members are post ids, scores the
publication time in microseconds since the epoch (exact in a double until the year 2255), so
ties on a score order by the member, the post id, as PostgreSQL orders (published_at, id). A
sentinel member with score 0 marks a built timeline: a key that is missing or lacks it (Redis
restarted, the key expired after timeline_ttl_s unread) reads as "not built" and the domain
rebuilds it from PostgreSQL. Fan-out writes only into built timelines (a Lua script checks the
sentinel per key), so readers who stopped reading cost nothing. Each write trims the set to its
newest `cap` entries.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
SENTINEL = "built"

# KEYS: timelines; ARGV: member, score, cap, sentinel. Adds to the built ones only.
_ADD = """
local added = 0
for i, key in ipairs(KEYS) do
  if redis.call('ZSCORE', key, ARGV[4]) then
    added = added + redis.call('ZADD', key, ARGV[2], ARGV[1])
    redis.call('ZREMRANGEBYRANK', key, 1, -(tonumber(ARGV[3]) + 1))
  end
end
return added
"""


def score_of(moment: datetime) -> int:
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def moment_of(score: float) -> datetime:
    return _EPOCH + timedelta(microseconds=int(score))


class RedisTimelines:
    """The `Timelines` engine over a redis.asyncio client (the bus's connection pool)."""

    def __init__(self, redis: Any, *, prefix: str, cap: int, ttl_s: int) -> None:
        self.redis = redis
        self.prefix = prefix
        self.cap = cap
        self.ttl_s = ttl_s
        self._add = redis.register_script(_ADD)

    def _key(self, user_id: uuid.UUID) -> str:
        return f"{self.prefix}tl:{user_id}"

    async def page(
        self, user_id: uuid.UUID, before: tuple[datetime, uuid.UUID] | None, limit: int
    ) -> list[tuple[datetime, uuid.UUID]] | None:
        key = self._key(user_id)
        top = f"({score_of(before[0]) + 1}" if before else "+inf"
        # Entries sharing the cursor's score are read too and cut by id below (ties are rare:
        # the same microsecond); the sentinel's score 0 is outside "(0".
        pipe = self.redis.pipeline(transaction=False)
        pipe.zscore(key, SENTINEL)
        pipe.zrange(
            key, top, "(0", byscore=True, desc=True, offset=0, num=limit + 16, withscores=True
        )
        pipe.expire(key, self.ttl_s)
        built, rows, _ = await pipe.execute()
        if built is None:
            return None
        out: list[tuple[datetime, uuid.UUID]] = []
        for member, score in rows:
            entry = (
                moment_of(score),
                uuid.UUID(member.decode() if isinstance(member, bytes) else member),
            )
            if before is None or entry < before:
                out.append(entry)
            if len(out) == limit:
                break
        return out

    async def add(
        self, user_ids: Sequence[uuid.UUID], post_id: uuid.UUID, published_at: datetime
    ) -> int:
        if not user_ids:
            return 0
        keys = [self._key(u) for u in user_ids]
        return int(
            await self._add(
                keys=keys, args=[str(post_id), score_of(published_at), self.cap, SENTINEL]
            )
        )

    async def remove(self, user_ids: Sequence[uuid.UUID], post_id: uuid.UUID) -> None:
        if not user_ids:
            return
        pipe = self.redis.pipeline(transaction=False)
        for user_id in user_ids:
            pipe.zrem(self._key(user_id), str(post_id))
        await pipe.execute()

    async def replace(
        self, user_id: uuid.UUID, entries: Sequence[tuple[datetime, uuid.UUID]]
    ) -> None:
        key = self._key(user_id)
        mapping: dict[str, int] = {SENTINEL: 0}
        mapping.update({str(post_id): score_of(at) for at, post_id in entries[: self.cap]})
        pipe = self.redis.pipeline(transaction=True)
        pipe.delete(key)
        pipe.zadd(key, mapping)
        pipe.expire(key, self.ttl_s)
        await pipe.execute()

    async def forget(self, user_id: uuid.UUID) -> None:
        await self.redis.delete(self._key(user_id))
