"""Muted words (keyword filters, as Mastodon's): words or phrases that hide matching posts from
your feeds and search, whole-word and case-insensitive (NFC, lower case), until they expire
(`expires_at`, read against ctx.clock) or you remove them. The SQL rule is
server/store/keyword_filters.passes_keyword_filters."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, Final

from server.domain.auth_tokens import Principal
from server.domain.context import Context
from server.domain.search.commands import MutedWordIn, MutedWordPatch
from server.domain.search.text import fold, parse_query
from server.errors import BadRequest, Conflict, NotFound, ValidationFailed
from server.ids import new_id
from server.pagination import decode_id_cursor, page
from server.store import keyword_filters as store
from server.store.db import Row

MAX_MUTED_WORDS: Final = 200
NO_WORD = "No such muted word."


def _view(row: Row) -> dict[str, Any]:
    return {
        "id": row["id"],
        "phrase": row["phrase"],
        "expires_at": row["expires_at"],
        "created_at": row["created_at"],
    }


def _expiry(value: datetime | None, now: datetime) -> datetime | None:
    """A time without a zone is UTC (as for posts' publish_at); it must be in the future."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    if value <= now:
        raise ValidationFailed.field("expires_at", "must be in the future")
    return value


def _phrase(raw: str) -> str:
    phrase = " ".join(fold(raw).split()).lstrip("#")
    try:
        parse_query(phrase)  # at least one word (a phrase of punctuation would match nothing)
    except BadRequest:
        raise ValidationFailed.field("phrase", "must contain a word") from None
    return phrase


async def mute_word(ctx: Context, actor: Principal, command: MutedWordIn) -> dict[str, Any]:
    """Mute a word or phrase; muting it again only changes its expiry (`created: false`)."""
    now = ctx.clock.now()
    expires_at = _expiry(command.expires_at, now)
    phrase = _phrase(command.phrase)
    async with ctx.db.transaction() as tx:
        await store.purge_expired(tx, actor.user_id, now)
        if await store.count_live(tx, actor.user_id, now) >= MAX_MUTED_WORDS:
            raise Conflict(f"You can mute at most {MAX_MUTED_WORDS} words.")
        row = await store.add(tx, new_id(), actor.user_id, phrase, expires_at, now)
    return {**_view(row), "created": row["created"]}


async def update_word(
    ctx: Context, actor: Principal, word_id: uuid.UUID, command: MutedWordPatch
) -> dict[str, Any]:
    expires_at = _expiry(command.expires_at, ctx.clock.now())
    row = await store.update_expiry(ctx.db, actor.user_id, word_id, expires_at)
    if row is None:
        raise NotFound(NO_WORD)
    return _view(row)


async def unmute_word(ctx: Context, actor: Principal, word_id: uuid.UUID) -> None:
    if not await store.remove(ctx.db, actor.user_id, word_id):
        raise NotFound(NO_WORD)


async def list_words(
    ctx: Context, actor: Principal, *, limit: int, cursor: str | None
) -> dict[str, Any]:
    """Your muted words that still apply, newest first."""
    rows = await store.page_of(
        ctx.db, actor.user_id, ctx.clock.now(), decode_id_cursor(cursor), limit + 1
    )
    rows, next_cursor = page(rows, limit, lambda r: str(r["id"]))
    return {"items": [_view(r) for r in rows], "next_cursor": next_cursor}
