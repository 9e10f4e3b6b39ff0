"""Keyset pagination: `?limit=&cursor=` in, `next_cursor` (opaque) out."""

from __future__ import annotations

import base64
import binascii
import uuid
from datetime import datetime
from typing import Any

import orjson
from pydantic import BaseModel, Field

from server.errors import ValidationFailed

DEFAULT_LIMIT = 20
MAX_LIMIT = 100


class PageQuery(BaseModel):
    limit: int = Field(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT)
    cursor: str | None = Field(None, max_length=512)


def encode_cursor(*values: Any) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(list(values))).decode().rstrip("=")


def decode_cursor(cursor: str | None, arity: int = 1) -> list[Any] | None:
    """The key the previous page ended at, or None for the first page."""
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        values = orjson.loads(raw)
    except (binascii.Error, ValueError, orjson.JSONDecodeError):
        values = None
    if not isinstance(values, list) or len(values) != arity:
        raise ValidationFailed.field("cursor", "is not a cursor this list produced")
    return values


def decode_id_cursor(cursor: str | None) -> uuid.UUID | None:
    """For lists ordered by a UUIDv7 id: the id the previous page ended at."""
    values = decode_cursor(cursor, 1)
    if values is None:
        return None
    try:
        return uuid.UUID(str(values[0]))
    except ValueError:
        raise ValidationFailed.field("cursor", "is not a cursor this list produced") from None


def decode_time_id_cursor(cursor: str | None) -> tuple[datetime, uuid.UUID] | None:
    """For lists ordered by (a UTC time, a UUID), newest first: the key the previous page
    ended at. A bogus cursor (or one with a time without its zone) is a 422 problem."""
    values = decode_cursor(cursor, 2)
    if values is None:
        return None
    try:
        at = datetime.fromisoformat(str(values[0]))
        if at.tzinfo is None:
            raise ValueError("a cursor's time carries its zone")
        return at, uuid.UUID(str(values[1]))
    except ValueError:
        raise ValidationFailed.field("cursor", "is not a cursor this list produced") from None


def page(
    rows: list[dict[str, Any]], limit: int, key: Any
) -> tuple[list[dict[str, Any]], str | None]:
    """Trim a `limit + 1` fetch to `limit` rows; the cursor is `key(last_row)` if more exist."""
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    k = key(rows[-1])
    return rows, encode_cursor(*(k if isinstance(k, tuple) else (k,)))
