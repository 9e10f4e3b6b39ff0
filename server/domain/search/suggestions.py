"""Suggested users: accounts to follow, from the viewer's network first (friends of friends:
followed by accounts you follow, the more of them the higher), then popular public accounts.
Never you, anyone you follow or asked to follow, anyone blocked either way, or muted.

The ranking is the expensive part (a fan-out over the follow graph), so it is cached per viewer
for a short while (CACHE_TTL_S, per process); the exclusions are re-checked on every read (one
indexed query over the cached ids), so following, blocking or muting someone removes them from
the next answer at once."""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict
from typing import Any, Final

from server.domain.accounts import profile_view
from server.domain.auth_tokens import Principal
from server.domain.context import Context
from server.store import search as store

CACHE_TTL_S: Final = 60.0
CACHE_USERS: Final = 10_000  # viewers cached per process (least recently computed dropped)
CANDIDATES: Final = 60
FAN_OUT: Final = 100

_cache: OrderedDict[uuid.UUID, tuple[float, list[tuple[uuid.UUID, int]]]] = OrderedDict()


async def _ranked(ctx: Context, viewer: uuid.UUID) -> list[tuple[uuid.UUID, int]]:
    now = time.monotonic()
    hit = _cache.get(viewer)
    if hit is not None and hit[0] > now:
        return hit[1]
    rows = await store.suggestion_candidates(ctx.db, viewer, limit=CANDIDATES, fan_out=FAN_OUT)
    ranked = [(row["id"], int(row["mutuals"])) for row in rows]
    _cache[viewer] = (now + CACHE_TTL_S, ranked)
    _cache.move_to_end(viewer)
    while len(_cache) > CACHE_USERS:
        _cache.popitem(last=False)
    return ranked


def forget(viewer: uuid.UUID) -> None:
    """Drop the viewer's cached ranking (tests; a follow needs no call: reads re-check)."""
    _cache.pop(viewer, None)


async def suggestions(ctx: Context, viewer: Principal, *, limit: int) -> dict[str, Any]:
    """Up to `limit` accounts to follow, best first, each with `mutuals`: how many accounts
    you follow follow them (0: suggested for popularity)."""
    ranked = await _ranked(ctx, viewer.user_id)
    profiles = await store.suggestable_profiles(ctx.db, viewer.user_id, [i for i, _ in ranked])
    items = [
        {**profile_view(profiles[user_id], viewer.user_id), "mutuals": mutuals}
        for user_id, mutuals in ranked
        if user_id in profiles
    ][:limit]
    return {"items": items}
