"""What every domain action receives: the store, the bus and the other engines. Built only by
the composition root (server/bootstrap.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from server.bus.base import Bus
from server.bus.ratelimit import RateLimiter, enforce
from server.clock import SYSTEM_CLOCK, Clock
from server.config import RateLimit, Settings
from server.domain.auth_tokens import Passwords, TokenSigner
from server.domain.coalescer import Coalescer
from server.domain.events import EventSink
from server.domain.linearizer import Linearizer
from server.domain.push import PushSender
from server.domain.sessions import RevocationCache
from server.mail import Mailer
from server.media.storage import ObjectStorage
from server.store.db import Database


class VirusScanner(Protocol):
    """What media processing needs of a scanner (server/media/scanning.py implements it)."""

    async def scan_file(self, path: Path) -> Any:
        """A result with `clean: bool` and `signature: str | None`."""


class Wakeable(Protocol):
    def wake(self) -> None:
        """Re-check now (something it sleeps on may have changed)."""


@dataclass
class Context:
    settings: Settings
    db: Database
    bus: Bus
    limiter: RateLimiter
    mailer: Mailer
    signer: TokenSigner
    passwords: Passwords
    # The one way events leave a transaction (server/domain/events.py).
    events: EventSink
    # This process's push relay client (logging, or the webhook of settings.push).
    push: PushSender
    # Serialises writes per conversation until their events are published (commit order).
    linearizer: Linearizer
    # Revoked sign-in sessions, cached per process (server/domain/sessions.py).
    revocations: RevocationCache
    # Where media bytes live (server/media/storage/), and the virus scanner (None: off).
    storage: ObjectStorage
    scanner: VirusScanner | None
    # The one source of "now" for business rules (server/clock.py); tests pin it.
    clock: Clock = SYSTEM_CLOCK
    # This process's coalescers of live counter events, by name (server/domain/coalescer.py).
    coalescers: dict[str, Coalescer] = field(default_factory=dict)
    # This node's buy-together expiry timer, when the gateway runs it (woken by group writes).
    group_expiry: Wakeable | None = None
    # Per-process caches and engines of capabilities, by name (feeds: the timeline engine,
    # the explore snapshot, trending), so they live and die with this Context.
    caches: dict[str, Any] = field(default_factory=dict)

    async def limit(self, key: str, limit: RateLimit, what: str) -> None:
        await enforce(self.limiter, key, limit, what)
