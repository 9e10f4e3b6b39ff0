"""Muted words (keyword filters, as Mastodon's): the viewer's phrases that hide posts.

`passes_keyword_filters` is the one SQL fragment every feed and search adds over its post alias:

    sql = f"SELECT ... FROM posts p WHERE ... AND {passes_keyword_filters('p')}"
    params = {"viewer": viewer_id, "now": ctx.clock.now(), ...}

How it matches: each muted word row keeps `query`, the phrase tsquery of its (NFC, lower case)
phrase; the viewer's live ones are OR-ed into one tsquery (the `tsquery_any` aggregate) by an
uncorrelated subquery, which PostgreSQL runs once per statement (an InitPlan over
muted_words_user_idx), and a post matches when its stored tsvector `posts.search` (migration
0017) matches that query: no re-parsing, no regex, no lookup per post. Matching is whole-word
and case-insensitive by construction (`spoil` does not hide "spoiler"; `Spoiler` does), phrases
match words in sequence, and a hashtag matches its word (`#spoiler`). Expired words
(expires_at <= now, `now` from ctx.clock) no longer hide anything. The viewer's own posts are
never hidden from them.

Writes and the page of muted words are here too (only this module touches `muted_words`).
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime

from server.store.db import Queries, Row

_PARAM_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ALIAS_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _param(name: str) -> str:
    if not _PARAM_RE.fullmatch(name):
        raise ValueError(f"a parameter name is required, not {name!r}")
    return f"%({name})s"


def passes_keyword_filters(post_alias: str = "p", viewer: str = "viewer", now: str = "now") -> str:
    """SQL boolean: post `post_alias` (an alias of `posts`) matches none of the viewer's live
    muted words (query parameter `viewer`; `now`, the clock's time, for the expiry), or the
    viewer is one of its authors. A NULL viewer hides nothing here: visibility fails closed
    elsewhere (server/store/visibility.py)."""
    if not _ALIAS_RE.fullmatch(post_alias):
        raise ValueError(f"a post alias is required, not {post_alias!r}")
    v, t, p = _param(viewer), _param(now), post_alias
    # No muted word: the aggregate is NULL, the match NULL, coalesced to "no match".
    return f"""({v}::uuid = ANY({p}.author_ids) OR NOT coalesce({p}.search @@ (
        SELECT tsquery_any(mw.query) FROM muted_words mw
        WHERE mw.user_id = {v}::uuid
          AND (mw.expires_at IS NULL OR mw.expires_at > {t}::timestamptz)), false))"""


MUTED_WORD_COLUMNS = "id, phrase, expires_at, created_at"


async def add(
    q: Queries,
    id: uuid.UUID,
    user_id: uuid.UUID,
    phrase: str,
    expires_at: datetime | None,
    now: datetime,
) -> Row:
    """Mute `phrase` (normalised by the caller); muting it again updates its expiry."""
    return await q.fetchrow_one(
        f"""INSERT INTO muted_words (id, user_id, phrase, expires_at, created_at)
            VALUES (%(id)s, %(user)s, %(phrase)s, %(expires)s, %(now)s)
            ON CONFLICT (user_id, phrase) DO UPDATE SET expires_at = EXCLUDED.expires_at
            RETURNING {MUTED_WORD_COLUMNS}, (xmax = 0) AS created""",
        {"id": id, "user": user_id, "phrase": phrase, "expires": expires_at, "now": now},
    )


async def count_live(q: Queries, user_id: uuid.UUID, now: datetime) -> int:
    return int(
        await q.fetchval(
            """SELECT count(*) FROM muted_words WHERE user_id = %s
                 AND (expires_at IS NULL OR expires_at > %s)""",
            (user_id, now),
        )
    )


async def update_expiry(
    q: Queries, user_id: uuid.UUID, word_id: uuid.UUID, expires_at: datetime | None
) -> Row | None:
    return await q.fetchrow(
        f"""UPDATE muted_words SET expires_at = %s WHERE user_id = %s AND id = %s
            RETURNING {MUTED_WORD_COLUMNS}""",
        (expires_at, user_id, word_id),
    )


async def remove(q: Queries, user_id: uuid.UUID, word_id: uuid.UUID) -> bool:
    return bool(
        await q.execute(
            "DELETE FROM muted_words WHERE user_id = %s AND id = %s", (user_id, word_id)
        )
    )


async def page_of(
    q: Queries, user_id: uuid.UUID, now: datetime, before: uuid.UUID | None, limit: int
) -> list[Row]:
    """The user's live muted words (expired ones are not listed), newest first."""
    return await q.fetch(
        f"""SELECT {MUTED_WORD_COLUMNS} FROM muted_words
            WHERE user_id = %(user)s AND (expires_at IS NULL OR expires_at > %(now)s)
              AND (%(before)s::uuid IS NULL OR id < %(before)s)
            ORDER BY id DESC LIMIT %(limit)s""",
        {"user": user_id, "now": now, "before": before, "limit": limit},
    )


async def purge_expired(q: Queries, user_id: uuid.UUID, now: datetime) -> None:
    await q.execute(
        "DELETE FROM muted_words WHERE user_id = %s AND expires_at <= %s", (user_id, now)
    )
