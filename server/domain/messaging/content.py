"""What a message may hold: its text (trimmed, bounded, never NUL), the links found in it, its
type, and the client's idempotency nonce. Shared by sending, forwarding, editing and contacting
a seller, so that every way of writing a message applies the same limits."""

from __future__ import annotations

import re

from server.domain.context import Context
from server.domain.text import has_visible_text
from server.errors import ValidationFailed

MAX_LINKS = 10
NONCE_MAX_CHARS = 100

_URL_RE = re.compile(r"(?i)\b(?:https?://|www\.)[^\s<>\"']+")


def links_in(content: str) -> list[str]:
    """The distinct URLs in a text, in order (at most MAX_LINKS), without trailing punctuation."""
    found = []
    for match in _URL_RE.finditer(content or ""):
        url = match.group(0).rstrip(".,;:!?)]}")
        if url not in found:
            found.append(url)
        if len(found) >= MAX_LINKS:
            break
    return found


def check_content(ctx: Context, content: str | None, *, optional: bool = False) -> str:
    """The message text, trimmed; 422 with a clear reason when empty (unless `optional`: a
    media message's caption), too long or not text."""
    text = (content or "").strip()
    if "\x00" in text:
        raise ValidationFailed.field("content", "may not contain NUL characters")
    if text and not has_visible_text(text):  # only zero-width / bidi / blank characters
        raise ValidationFailed.field("content", "a message needs some text (visible characters)")
    if not text and not optional:
        raise ValidationFailed.field("content", "a message needs some text")
    limit = ctx.settings.messaging.max_message_chars
    if len(text) > limit:
        raise ValidationFailed.field(
            "content", f"is {len(text)} characters long; a message holds at most {limit}"
        )
    return text


def check_nonce(nonce: str | None) -> str | None:
    """The client's idempotency key, if any (1 to NONCE_MAX_CHARS characters)."""
    if nonce is None:
        return None
    if not nonce or len(nonce) > NONCE_MAX_CHARS or "\x00" in nonce:
        raise ValidationFailed.field("nonce", f"must be 1 to {NONCE_MAX_CHARS} characters")
    return nonce


def text_message_type(content: str, requested: str | None) -> str:
    """The type of a sent message without a product: `link` when the text holds a URL (or
    asked for, which then needs one), else `text`. Image and video messages carry media_ids."""
    if requested in (None, "text", "link"):
        has_link = bool(links_in(content))
        if requested == "link" and not has_link:
            raise ValidationFailed.field("message_type", "a link message needs a URL in content")
        if requested == "text":
            return "text"
        return "link" if has_link else "text"
    if requested in ("image", "video"):
        raise ValidationFailed.field("media_ids", f"an {requested} message needs media_ids")
    raise ValidationFailed.field("message_type", "must be text or link")
