"""The command models of search, lists and muted words, validated once at the edge (bodies
refuse unknown fields, queries ignore them; see server/domain/messaging/commands.py)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, Field

from server.domain.messaging.commands import Command, Query
from server.pagination import PageQuery

MAX_QUERY_CHARS = 200
SEARCH_MAX_LIMIT = 50


class SearchQuery(Query):
    """`q`: what to look for (1-200 characters, not only spaces; every word matches as a
    prefix: `gam lap` finds "gaming laptop"). `cursor`: the `next_cursor` of the previous page.
    `history=false`: do not add this search to your history."""

    # Checked in the domain (400 for empty / overlong); the bound here only caps parsing.
    q: str | None = Field(None, max_length=10_000)
    limit: int = Field(20, ge=1, le=SEARCH_MAX_LIMIT)
    cursor: str | None = Field(None, max_length=512)
    history: bool = True


class HistoryQuery(PageQuery, Query):
    """A page of your search history."""


# PostgreSQL stores instants past year 9999 in UTC (9999-12-31T23:59:59-14:00) that Python
# cannot read back: the muted-word list would fail with a 500 from then on.
LATEST_EXPIRY = datetime(9000, 1, 1, tzinfo=UTC)


def _check_expiry(value: datetime | None) -> datetime | None:
    aware = value if value is None or value.tzinfo else value.replace(tzinfo=UTC)
    if aware is not None and aware >= LATEST_EXPIRY:
        raise ValueError("must be before the year 9000 (or null: never expires)")
    return value


Expiry = Annotated[datetime | None, AfterValidator(_check_expiry)]


class MutedWordIn(Command):
    """A word or phrase to hide posts by (whole words, any case; `expires_at`: when it stops
    hiding, null: never)."""

    phrase: str = Field(min_length=1, max_length=100)
    expires_at: Expiry = None


class MutedWordPatch(Command):
    """A new expiry for the muted word (null: never expires)."""

    expires_at: Expiry


class ListIn(Command):
    """A list: its name (1-100 characters), a description and whether only you can see it."""

    name: str = Field(min_length=1, max_length=100)
    description: str | None = Field(None, max_length=500)
    is_private: bool = False


class ListPatch(Command):
    """A partial list edit: only the given fields change."""

    name: str | None = Field(None, min_length=1, max_length=100)
    description: str | None = Field(None, max_length=500)
    is_private: bool | None = None


class ListMemberIn(Command):
    """The user to add to the list."""

    user_id: uuid.UUID


class PageIn(PageQuery, Query):
    """A page."""
