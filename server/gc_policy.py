"""Garbage-collection policy of a long-lived socket server, and the GC pause histogram.

Why: with 5,000 sockets the process holds ~500,000 objects the cyclic collector tracks (aiohttp's
protocol / parser / response objects and the handler coroutine chain of every socket). A full
(generation 2) collection walks all of them and stops the event loop for 50-450 ms, every few
seconds under load, and every message in flight waits that long. Those objects live as long as
their socket; scanning them again and again finds nothing.

The policy (gateway settings `gc_*`, applied by the serving process only):
- `gc.freeze()` once warm-up is over and then every `gc_freeze_interval_s` (1 s: a freeze is a
  young collection plus a list splice, ~1 ms): whatever survived until then moves to the
  permanent generation, which collections never scan. New objects are
  collected as usual, so a message's short-lived garbage still goes.
- Reference counting still frees frozen objects that are not in a cycle (a closed socket's
  objects mostly). Cycles among frozen objects would stay, so every `gc_full_collect_interval_s`
  the permanent generation is unfrozen and one full collection runs (one long pause per
  interval, timed and visible in the histogram, instead of one every few seconds).
- `gc_threshold0` stays at Python's 700 by default: a larger one makes young collections rarer
  but generation-1 collections scan up to 10x more (at 10,000, 100 ms pauses were measured while
  5,000 fresh sockets were not frozen yet). Freezing every second keeps the young generations
  small instead.

The pause of every collection is observed by a `gc.callbacks` hook into
`nexgate_gc_pause_seconds{generation}`.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from prometheus_client import Gauge, Histogram

log = logging.getLogger(__name__)

GC_PAUSE = Histogram(
    "nexgate_gc_pause_seconds",
    "How long one cyclic garbage collection stopped the process (gc.callbacks), by generation",
    ["generation"],
    buckets=(0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1),
)
GC_FROZEN = Gauge(
    "nexgate_gc_frozen_objects",
    "Objects in the permanent generation (gc.freeze), counted at most once a minute",
)

COUNT_EVERY_S = 60.0  # how often the frozen-objects gauge is refreshed

_pause_children = [GC_PAUSE.labels(str(generation)) for generation in range(3)]
_started = [0.0]


def _on_gc(phase: str, info: dict[str, Any]) -> None:
    # Runs inside the collector: only arithmetic, no allocation-heavy work.
    if phase == "start":
        _started[0] = time.perf_counter()
    else:
        generation = info.get("generation", 2)
        _pause_children[min(max(generation, 0), 2)].observe(time.perf_counter() - _started[0])


def install_pause_histogram() -> None:
    """Observe every collection's pause (idempotent)."""
    if _on_gc not in gc.callbacks:
        gc.callbacks.append(_on_gc)


def freeze() -> None:
    """Move every object alive now to the permanent generation (after a young collection, so
    that this moment's short-lived garbage is not frozen with it). No count here:
    gc.get_freeze_count() walks the whole permanent generation (12 % of the server's CPU in a
    profile when it ran every second)."""
    gc.collect(1)
    gc.freeze()


def count_frozen() -> int:
    """Walks every frozen object: call rarely."""
    count = gc.get_freeze_count()
    GC_FROZEN.set(count)
    return count


def full_collect_and_refreeze() -> int:
    """Unfreeze, collect everything once (cycles among long-lived objects), freeze again."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()
    return count_frozen()


async def run_policy(
    *, warmup_s: float, freeze_interval_s: float, full_collect_interval_s: float
) -> None:
    """Freeze after warm-up and periodically; a full collection every so often (cancel to
    stop)."""
    loop = asyncio.get_running_loop()
    await asyncio.sleep(warmup_s)
    next_full = loop.time() + full_collect_interval_s
    next_count = loop.time()
    while True:
        if full_collect_interval_s > 0 and loop.time() >= next_full:
            next_full = loop.time() + full_collect_interval_s
            started = time.perf_counter()
            count = full_collect_and_refreeze()
            log.info(
                "gc: full collection and re-freeze",
                extra={"frozen": count, "seconds": round(time.perf_counter() - started, 4)},
            )
        else:
            freeze()
            if loop.time() >= next_count:
                next_count = loop.time() + COUNT_EVERY_S
                count_frozen()
        await asyncio.sleep(freeze_interval_s)


@asynccontextmanager
async def gc_policy(
    *,
    enabled: bool,
    threshold0: int,
    warmup_s: float,
    freeze_interval_s: float,
    full_collect_interval_s: float,
) -> AsyncIterator[None]:
    """The policy for the lifetime of a serving process; the pause histogram always."""
    install_pause_histogram()
    if not enabled:
        yield
        return
    previous = gc.get_threshold()
    if threshold0 > 0:
        gc.set_threshold(threshold0, previous[1], previous[2])
    task = asyncio.get_running_loop().create_task(
        run_policy(
            warmup_s=warmup_s,
            freeze_interval_s=freeze_interval_s,
            full_collect_interval_s=full_collect_interval_s,
        ),
        name="gc-policy",
    )
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        gc.set_threshold(*previous)
        gc.unfreeze()
