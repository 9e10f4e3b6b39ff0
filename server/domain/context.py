"""What every domain action receives: the store, the bus and the other engines."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from server.bus.base import Bus
from server.bus.ratelimit import RateLimiter, enforce
from server.clock import SYSTEM_CLOCK, Clock
from server.config import RateLimit, Settings
from server.domain.auth_tokens import Passwords, TokenSigner
from server.mail import Mailer
from server.store.db import Database, Transaction


@dataclass
class Context:
    settings: Settings
    db: Database
    bus: Bus
    limiter: RateLimiter
    mailer: Mailer
    signer: TokenSigner
    passwords: Passwords
    # The one source of "now" for business rules (server/clock.py); tests pin it.
    clock: Clock = SYSTEM_CLOCK
    extras: dict[str, Any] = field(default_factory=dict)

    async def limit(self, key: str, limit: RateLimit, what: str) -> None:
        await enforce(self.limiter, key, limit, what)

    def emit_after_commit(
        self, tx: Transaction, user_ids: Iterable[uuid.UUID], type: str, data: dict[str, Any]
    ) -> None:
        """Publish a user event once `tx` has committed (never for a rolled-back write)."""
        recipients = list(dict.fromkeys(user_ids))
        if recipients:
            tx.after_commit(lambda: self.bus.publish_user(recipients, type, data))

    def emit_topic_after_commit(
        self, tx: Transaction, topic: str, type: str, data: dict[str, Any]
    ) -> None:
        tx.after_commit(lambda: self.bus.publish_topic(topic, type, data))
