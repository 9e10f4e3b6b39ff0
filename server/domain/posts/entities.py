"""Entities of a post's plain text: @mentions, #hashtags, $shop mentions and URLs, with their
offsets, so clients draw links over text they never parse as HTML (no XSS by construction).

Offsets are Unicode code points (`start` inclusive, `end` exclusive), the unit every language
can index: `"👋🏽 @ana"` has `@ana` at 3..7 (the wave and its skin tone are two code points). A
client on UTF-16 strings (JavaScript, Java, NSString) converts by counting code points.

Rules (the Twitter / Mastodon conventions):
- `@name`, `#tag` and `$handle` start at the beginning of the text or after a character that is
  not a letter, digit, `_` or another entity sign (so `ana@example.com` mentions nobody);
- usernames and shop handles are a-z, 0-9 and `_`, matched case-insensitively;
- a hashtag is letters, digits, marks (combining accents) and `_` of any script, at most 100
  characters, not only digits (`#1` is not a tag); it is stored NFC-normalised and case-folded
  (`#Café` and `#CAFE\u0301` are the same tag `café`);
- URLs are http(s) only, without control characters; trailing punctuation is left out.
Parsing finds candidates; resolving (which users and shops exist and may be mentioned) is the
caller's, which keeps only entities that resolved.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Any

MAX_TAG_CHARS = 100
_BOUNDARY = r"(?<![\w@#$])"
_MENTION_RE = re.compile(_BOUNDARY + r"@([A-Za-z0-9_]{3,30})(?![\w@])")
_SHOP_RE = re.compile(_BOUNDARY + r"\$([A-Za-z0-9_]{2,40})(?![\w$])")
# \w covers letters and digits of every script and `_`; combining marks (\p{M}) follow a base.
_HASHTAG_RE = re.compile(
    _BOUNDARY + r"#((?:\w|[\u0300-\u036f\u1ab0-\u1aff\u20d0-\u20ff\ufe20-\ufe2f])+)"
)
_URL_RE = re.compile(r"(?<![\w/])https?://[^\s<>\"'\x00-\x1f\x7f]+", re.IGNORECASE)
_URL_TRAILING = ".,;:!?)]}'\""


@dataclass(frozen=True)
class Candidate:
    kind: str  # "mention" | "hashtag" | "shop" | "url"
    start: int
    end: int
    text: str  # as written
    key: str  # what it resolves by: username / tag / handle (lower-case), or the URL


def normalize_tag(raw: str) -> str:
    """The stored form of a hashtag: NFC, case-folded (then NFC again: folding can decompose)."""
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", raw).casefold())


def _trim_url(url: str) -> str:
    while url and url[-1] in _URL_TRAILING:
        if url[-1] == ")" and url.count("(") >= url.count(")"):
            break  # a balanced parenthesis belongs to the URL (Wikipedia links)
        url = url[:-1]
    return url


def scan(text: str) -> list[Candidate]:
    """Every entity candidate in `text`, in order of appearance."""
    found: list[Candidate] = []
    for match in _MENTION_RE.finditer(text):
        found.append(
            Candidate("mention", match.start(), match.end(), match.group(0), match[1].lower())
        )
    for match in _SHOP_RE.finditer(text):
        found.append(
            Candidate("shop", match.start(), match.end(), match.group(0), match[1].lower())
        )
    for match in _HASHTAG_RE.finditer(text):
        raw = match[1]
        if len(raw) > MAX_TAG_CHARS or raw.isdigit() or raw.replace("_", "") == "":
            continue
        found.append(
            Candidate("hashtag", match.start(), match.end(), match.group(0), normalize_tag(raw))
        )
    for match in _URL_RE.finditer(text):
        url = _trim_url(match.group(0))
        if len(url) > len("https://"):
            start = match.start()
            found.append(Candidate("url", start, start + len(url), url, url))
    # A URL's fragment (`https://x.test/#top`) or path (`/@ana`) is not a tag or mention.
    urls = [(c.start, c.end) for c in found if c.kind == "url"]
    kept = [
        c
        for c in found
        if c.kind == "url" or not any(start <= c.start < end for start, end in urls)
    ]
    return sorted(kept, key=lambda c: c.start)


def hashtags(text: str) -> list[str]:
    """The distinct normalised hashtags of `text`, in order of first appearance."""
    return list(dict.fromkeys(c.key for c in scan(text) if c.kind == "hashtag"))


def render(
    candidates: list[Candidate],
    *,
    users: dict[str, Any],
    shops: dict[str, Any],
) -> list[dict[str, Any]]:
    """The entities clients get: mentions of the `users` given (username -> id), shop mentions
    of the `shops` given (handle -> id), every hashtag and URL; unresolved mentions stay text."""
    entities: list[dict[str, Any]] = []
    for c in candidates:
        entity: dict[str, Any] = {"type": c.kind, "start": c.start, "end": c.end, "text": c.text}
        if c.kind == "mention":
            if c.key not in users:
                continue
            entity.update(username=c.key, user_id=str(users[c.key]))
        elif c.kind == "shop":
            if c.key not in shops:
                continue
            entity.update(handle=c.key, shop_id=str(shops[c.key]))
        elif c.kind == "hashtag":
            entity["tag"] = c.key
        else:
            entity["url"] = c.key
        entities.append(entity)
    return entities
