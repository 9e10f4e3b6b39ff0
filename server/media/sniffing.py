"""What an upload is, from its first bytes (magic numbers), never from its name or the
Content-Type the client sent."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# Enough for every signature below (ISO BMFF brands sit at offset 8).
SNIFF_BYTES = 64

MediaKind = Literal["image", "video"]


@dataclass(frozen=True)
class Sniffed:
    kind: MediaKind
    content_type: str


_HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"}
_MOV_BRANDS = {b"qt  "}


def sniff(head: bytes) -> Sniffed | None:
    """The accepted format these bytes start with, or None (not a format we take)."""
    if head.startswith(b"\xff\xd8\xff"):
        return Sniffed("image", "image/jpeg")
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return Sniffed("image", "image/png")
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return Sniffed("image", "image/webp")
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return Sniffed("image", "image/gif")
    if head.startswith(b"\x1a\x45\xdf\xa3"):  # EBML: Matroska / WebM
        return Sniffed("video", "video/webm")
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in _HEIF_BRANDS:
            return Sniffed("image", "image/heic")
        if brand in _MOV_BRANDS:
            return Sniffed("video", "video/quicktime")
        return Sniffed("video", "video/mp4")
    if head[4:8] in (b"moov", b"mdat", b"wide", b"free"):  # old QuickTime without ftyp
        return Sniffed("video", "video/quicktime")
    return None


ACCEPTED = "JPEG, PNG, WebP, GIF or HEIC images; MP4, MOV or WebM videos"
