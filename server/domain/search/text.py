"""Search text: the query's words, the prefix tsquery they make, and highlights.

Words are runs of letters and digits after NFC normalisation and lower-casing, split the way
PostgreSQL's parser splits them (`foo_bar` and `e-mail` are two words each), so every word of
the query is a word of the index. Every word must be found whole, the last one also as a prefix
(search as you type: `gaming lap` finds "gaming laptop"; server/store/search.prefix_tsquery).

Highlights say where the query's words are in a returned text: for each field shown (a post's
`content`; a user's `username`, `display_name`, `bio`; a hashtag's `tag`; an entity's `name`),
`[{"field": "content", "start": 4, "end": 10}, ...]`, offsets in code points into the text as
returned (the same convention as post entities), in text order, each span one whole word that
is a query word (or, for the last query word, starts with it). A client bolds them; nothing
is pre-rendered as HTML.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from typing import Any

from server.domain.search.commands import MAX_QUERY_CHARS
from server.errors import BadRequest

MAX_TERMS = 8
_WORD_RE = re.compile(r"[^\W_]+", re.UNICODE)


def fold(text: str) -> str:
    """NFC, lower case: how the index (to_tsvector 'simple' over NFC text) spells words."""
    return unicodedata.normalize("NFC", text).lower()


def parse_query(raw: str | None) -> list[str]:
    """The query's words (at most MAX_TERMS); 400 for no query, only spaces or punctuation, or
    more than MAX_QUERY_CHARS characters."""
    text = (raw or "").strip()
    if not text:
        raise BadRequest("Say what to search for (q).", errors={"q": ["is required"]})
    if len(text) > MAX_QUERY_CHARS:
        raise BadRequest(
            f"A search is at most {MAX_QUERY_CHARS} characters.",
            errors={"q": [f"at most {MAX_QUERY_CHARS} characters"]},
        )
    words = list(dict.fromkeys(_WORD_RE.findall(fold(text))))[:MAX_TERMS]
    if not words:
        raise BadRequest("Search for at least one word.", errors={"q": ["has no words"]})
    return words


def highlights(fields: Mapping[str, str | None], words: Sequence[str]) -> list[dict[str, Any]]:
    """Spans of `fields`' texts whose word starts with one of `words` (see the module doc)."""
    spans: list[dict[str, Any]] = []
    whole, last = set(words[:-1]), words[-1] if words else ""
    for field, text in fields.items():
        if not text or not words:
            continue
        for match in _WORD_RE.finditer(text):
            word = fold(match.group())
            if word in whole or word.startswith(last):
                spans.append({"field": field, "start": match.start(), "end": match.end()})
    return spans
