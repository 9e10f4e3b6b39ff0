"""Time-ordered identifiers (UUIDv7) and UTC time."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from uuid_utils import compat


def new_id() -> uuid.UUID:
    return compat.uuid7()


def utcnow() -> datetime:
    return datetime.now(UTC)


def parse_uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except (ValueError, AttributeError, TypeError):
        return None
