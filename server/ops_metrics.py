"""Process-wide operational metrics shared by `nexgate serve` and `nexgate worker`: build info,
event-loop lag, the latency and errors of PostgreSQL and Redis, and the outcomes of push and
mail deliveries. (HTTP, gateway and job metrics live with their layers.)"""

from __future__ import annotations

import asyncio
import contextlib
import platform
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from importlib import metadata
from typing import Any, TypeVar

from prometheus_client import Counter, Gauge, Histogram, Info

T = TypeVar("T")


def _version() -> str:
    try:
        return metadata.version("nexgate")
    except metadata.PackageNotFoundError:
        return "unknown"


BUILD = Info("nexgate_build", "The running build")
BUILD.info({"version": _version(), "python": platform.python_version()})

LOOP_LAG = Gauge(
    "nexgate_event_loop_lag_seconds",
    "How late the event loop ran a timer, last sample (a busy or blocked loop delays every "
    "socket of the process)",
)
LOOP_LAG_MAX = Gauge(
    "nexgate_event_loop_lag_max_seconds", "The largest event-loop lag of the last 10 s"
)
# The distribution (p99 over any window with histogram_quantile): a gauge sampled every 15 s
# by Prometheus misses the short stalls that make a latency tail.
LOOP_LAG_HISTOGRAM = Histogram(
    "nexgate_event_loop_delay_seconds",
    "How late the event loop ran a timer, every sample (a sleep-drift sampler)",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)

_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)
DEPENDENCY_LATENCY = Histogram(
    "nexgate_dependency_duration_seconds",
    "Latency of calls to PostgreSQL (transactions) and Redis (bus operations)",
    ["dependency", "op"],
    buckets=_LATENCY_BUCKETS,
)
DEPENDENCY_ERRORS = Counter(
    "nexgate_dependency_errors_total",
    "Calls to PostgreSQL or Redis that failed (connection errors, timeouts, server errors)",
    ["dependency", "op"],
)
DELIVERIES = Counter(
    "nexgate_deliveries_total",
    "Push notifications and emails handed to the relay / SMTP server, by outcome",
    ["channel", "outcome"],
)


async def timed(dependency: str, op: str, call: Awaitable[T]) -> T:
    """Await `call`, recording its latency and whether it failed."""
    started = time.perf_counter()
    try:
        return await call
    except asyncio.CancelledError:
        raise
    except Exception:
        DEPENDENCY_ERRORS.labels(dependency, op).inc()
        raise
    finally:
        DEPENDENCY_LATENCY.labels(dependency, op).observe(time.perf_counter() - started)


@asynccontextmanager
async def timed_block(dependency: str, op: str) -> AsyncIterator[None]:
    started = time.perf_counter()
    try:
        yield
    except asyncio.CancelledError:
        raise
    except Exception:
        DEPENDENCY_ERRORS.labels(dependency, op).inc()
        raise
    finally:
        DEPENDENCY_LATENCY.labels(dependency, op).observe(time.perf_counter() - started)


async def deliver(channel: str, send: Callable[[], Awaitable[Any]]) -> None:
    """Run one push / mail send, counting its outcome (ok / failed)."""
    try:
        await send()
    except asyncio.CancelledError:
        raise
    except Exception:
        DELIVERIES.labels(channel, "failed").inc()
        raise
    DELIVERIES.labels(channel, "ok").inc()


async def watch_event_loop_lag(interval_s: float = 0.1, window_s: float = 10.0) -> None:
    """Sample how late a timer fires, forever (cancel to stop)."""
    loop = asyncio.get_running_loop()
    worst, window_start = 0.0, loop.time()
    while True:
        expected = loop.time() + interval_s
        await asyncio.sleep(interval_s)
        lag = max(0.0, loop.time() - expected)
        LOOP_LAG.set(lag)
        LOOP_LAG_HISTOGRAM.observe(lag)
        worst = max(worst, lag)
        if loop.time() - window_start >= window_s:
            LOOP_LAG_MAX.set(worst)
            worst, window_start = 0.0, loop.time()


@asynccontextmanager
async def loop_lag_watcher() -> AsyncIterator[None]:
    task = asyncio.get_running_loop().create_task(watch_event_loop_lag(), name="loop-lag")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
