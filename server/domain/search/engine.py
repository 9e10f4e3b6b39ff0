"""The search engine protocol: what search needs of an index, so an external engine
(Elasticsearch, Meilisearch) can replace the PostgreSQL one (server/store/search.py) without
touching the actions, the HTTP surface or the ranking contract.

Every method answers for one viewer and must apply every visibility rule (blocks both ways,
private accounts, followers-only, deleted, muted authors, hidden posts, the viewer's muted
words); the actions re-check posts through server.store.visibility anyway before drawing them,
so an engine whose index lags cannot leak a post that became invisible.

Rows: `users` -> profile rows (store.users.PROFILE_COLUMNS) best first; `posts` /
`linked_posts` -> `id` (+ `score`) best first; `hashtags` -> `id, tag, posts_count,
created_at`; `entities` -> `id, label, rank`. Pages are `offset` / `limit` into the ranking of
at most `cap` candidates.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Protocol

from server.store.db import Queries, Row
from server.store.search import PgSearchEngine


class SearchEngine(Protocol):
    async def users(
        self, viewer: uuid.UUID, words: list[str], *, exact: str, offset: int, limit: int, cap: int
    ) -> list[Row]: ...

    async def posts(
        self,
        viewer: uuid.UUID,
        words: list[str],
        now: datetime,
        *,
        offset: int,
        limit: int,
        cap: int,
    ) -> list[Row]: ...

    async def hashtags(
        self, viewer: uuid.UUID, prefix: str, *, offset: int, limit: int, cap: int
    ) -> list[Row]: ...

    async def linked_posts(
        self,
        kind: str,
        viewer: uuid.UUID,
        words: list[str],
        now: datetime,
        *,
        offset: int,
        limit: int,
        cap: int,
    ) -> list[Row]: ...

    async def entities(
        self, kind: str, viewer: uuid.UUID, words: list[str], limit: int
    ) -> list[Row]: ...


def engine_for(q: Queries) -> SearchEngine:
    """The configured engine (PostgreSQL full text: the only one today)."""
    return PgSearchEngine(q)
