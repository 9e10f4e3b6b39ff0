"""Text hygiene shared by every capability: what counts as visible, how display names are
normalised, and which characters a URL may not hold.

- Visible: a text field that must say something (a message, a display name, a bio when given)
  is refused when nothing is left after removing invisible characters: format characters
  (Unicode category Cf: zero-width space / joiners, bidi controls, BOM, word joiner...),
  whitespace, and the blank-looking letters (Hangul fillers, braille blank) that render as
  nothing.
- Display names: NFC-normalised, trimmed, and without format characters at all (a bidi
  override makes "Ada‮nimda" display as "Adaadmin"; zero-width characters make two names look
  identical). That is the cheap rule against impersonation by lookalikes; names are not
  unique, so the @username (ASCII a-z 0-9 _) stays the identity clients should show.
- URLs: no control characters (CR / LF / TAB / DEL... category Cc), which could split headers
  or log lines where a URL is echoed.
"""

from __future__ import annotations

import unicodedata

from server.errors import ValidationFailed

# Letters that render as blank space in common fonts.
_BLANK_LETTERS = frozenset("\u115f\u1160\u3164\uffa0\u2800")


def _invisible(char: str) -> bool:
    return char.isspace() or unicodedata.category(char) in ("Cf", "Cc") or char in _BLANK_LETTERS


def has_visible_text(text: str) -> bool:
    return any(not _invisible(c) for c in text)


def require_visible(text: str, field: str, message: str = "needs some visible text") -> str:
    """`text` trimmed; 422 naming `field` when nothing visible is left."""
    text = text.strip()
    if not has_visible_text(text):
        raise ValidationFailed.field(field, message)
    return text


def normalize_display_name(name: str, field: str = "display_name") -> str:
    """NFC, without format characters (zero-width, bidi controls), trimmed; 422 if blank."""
    name = unicodedata.normalize("NFC", name)
    name = "".join(c for c in name if unicodedata.category(c) != "Cf")
    name = " ".join(name.split())  # runs of whitespace (incl. newlines) become one space
    return require_visible(name, field, "cannot be blank")


def has_control_characters(text: str) -> bool:
    return any(unicodedata.category(c) == "Cc" for c in text)
