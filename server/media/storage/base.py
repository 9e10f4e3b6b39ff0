"""The storage interface every backend implements.

Keys are relative paths such as `m/<media id>/large.webp`. Objects under `m/` are served to
anyone holding their URL (the media id is unguessable); `incoming/` holds uploads not yet
processed and is never served.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

SERVED_PREFIX = "m/"
INCOMING_PREFIX = "incoming/"
_KEY_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*(?:/[A-Za-z0-9][A-Za-z0-9._-]*)*")


_CONTENT_TYPES = {
    "m3u8": "application/vnd.apple.mpegurl",
    "ts": "video/mp2t",
    "m4s": "video/iso.segment",
    "mp4": "video/mp4",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "webp": "image/webp",
}


def content_type_for(name: str) -> str:
    """The Content-Type of a stored file, from the extension this server gave it."""
    return _CONTENT_TYPES.get(name.rsplit(".", 1)[-1].lower(), "application/octet-stream")


class StorageUnavailable(Exception):
    """The backend could not be reached or refused the operation (retry later)."""


def check_key(key: str) -> str:
    """A key made of safe path segments (no `..`, no leading slash); ValueError otherwise."""
    if len(key) > 512 or not _KEY_RE.fullmatch(key) or ".." in key.split("/"):
        raise ValueError(f"bad storage key {key!r}")
    return key


@dataclass(frozen=True)
class Located:
    """Where to find an object to serve: a local file, or a URL to redirect to."""

    path: Path | None = None
    redirect_url: str | None = None
    permanent: bool = False


class ObjectStorage(Protocol):
    name: str

    async def start(self) -> None:
        """Connect (or create the root directory)."""

    async def close(self) -> None: ...

    async def put_file(self, key: str, path: Path, content_type: str) -> None:
        """Store the file at `path` under `key` (streamed, never read whole into memory)."""

    async def fetch_to(self, key: str, path: Path) -> None:
        """Copy the object `key` into the local file `path` (FileNotFoundError if absent)."""

    async def delete(self, keys: Sequence[str]) -> None:
        """Delete these objects (absent ones are fine)."""

    def url(self, key: str) -> str:
        """The stable URL clients fetch the object from (stored in messages and profiles)."""

    async def locate(self, key: str) -> Located | None:
        """How this server serves `GET /media/<key>`: a file, a redirect, or None (404)."""
