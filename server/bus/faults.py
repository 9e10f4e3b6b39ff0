"""Bus faults: how to recognise one, and rate limiting that survives its engine failing
(Redis down, restarting, failing over).

`is_bus_failure(exc)`: the bus engine could not be reached (connection refused or reset, a
timeout). Transports answer those 503 (HTTP, with Retry-After) or `unavailable` (gateway
calls), never 500: the request may be retried once Redis is back.

Wraps any `RateLimiter` (server/bus/ratelimit.py) without touching it. When the engine raises,
the wrapper either lets the request through (`open`, the default: a Redis outage must not turn
every authenticated request into an error) or refuses it with 503 + Retry-After
(`unavailable`, for deployments that would rather shed load than run unlimited). Either way the
fault is counted and logged (at most once per `log_every_s`, so an outage does not flood the
log), and rejections are counted too.
"""

from __future__ import annotations

import logging
import time
from typing import Literal

from prometheus_client import Counter
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from server.bus.ratelimit import RateLimiter
from server.config import RateLimit
from server.errors import ServiceUnavailable

log = logging.getLogger("nexgate.ratelimit")

RATE_LIMIT_FAULTS = Counter(
    "nexgate_rate_limit_faults_total",
    "Rate-limit checks whose engine failed, by what was done (open: allowed; unavailable: 503)",
    ["outcome"],
)
RATE_LIMIT_REJECTIONS = Counter(
    "nexgate_rate_limit_rejections_total", "Rate-limit checks that refused (429 or throttled)"
)

FaultPolicy = Literal["open", "unavailable"]


def is_bus_failure(exc: BaseException) -> bool:
    return isinstance(exc, RedisConnectionError | RedisTimeoutError)


class LimiterUnavailable(ServiceUnavailable):
    code = "rate_limiter_unavailable"
    title = "Rate limiting unavailable"

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class FaultTolerantLimiter:
    def __init__(
        self,
        inner: RateLimiter,
        policy: FaultPolicy = "open",
        *,
        retry_after_s: int = 5,
        log_every_s: float = 10.0,
    ) -> None:
        self.inner = inner
        self.policy = policy
        self.retry_after_s = retry_after_s
        self.log_every_s = log_every_s
        self._last_log = 0.0

    def _fault(self, action: str, exc: Exception) -> None:
        RATE_LIMIT_FAULTS.labels(self.policy).inc()
        now = time.monotonic()
        if now - self._last_log >= self.log_every_s:
            self._last_log = now
            log.warning(
                "rate limiter unavailable on %s (%s: %s); policy %s",
                action,
                type(exc).__name__,
                exc,
                "fail open: allowing" if self.policy == "open" else "refusing with 503",
            )
        if self.policy == "unavailable":
            raise LimiterUnavailable(
                "Rate limiting is temporarily unavailable; retry shortly.",
                retry_after=self.retry_after_s,
            ) from exc

    async def hit(self, key: str, limit: RateLimit, cost: int = 1) -> int:
        try:
            retry_after = await self.inner.hit(key, limit, cost)
        except Exception as exc:
            self._fault("hit", exc)
            return 0
        if retry_after and cost > 0:
            RATE_LIMIT_REJECTIONS.inc()
        return retry_after

    async def reset(self, key: str) -> None:
        try:
            await self.inner.reset(key)
        except Exception as exc:
            # A reset that did not happen only leaves a count to expire with its window.
            RATE_LIMIT_FAULTS.labels("open").inc()
            log.warning("rate limiter reset failed (%s): %s", type(exc).__name__, exc)
