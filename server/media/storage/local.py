"""Local-directory storage (the embedded default): files under one root, served by this server
at /media/<key> with immutable cache headers, ETag and Range (server/http/media_files.py)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

from server.media.storage.base import Located, check_key


class LocalStorage:
    name = "local"

    def __init__(self, root: str | Path, *, server_url: str) -> None:
        self.root = Path(root).resolve()
        self.server_url = server_url.rstrip("/")

    async def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)

    async def close(self) -> None:
        return None

    def path_of(self, key: str) -> Path:
        return self.root / check_key(key)

    async def put_file(self, key: str, path: Path, content_type: str) -> None:
        target = self.path_of(key)
        await asyncio.to_thread(_copy_atomically, path, target)

    async def fetch_to(self, key: str, path: Path) -> None:
        source = self.path_of(key)
        if not source.is_file():
            raise FileNotFoundError(key)
        await asyncio.to_thread(shutil.copyfile, source, path)

    async def delete(self, keys: Sequence[str]) -> None:
        def remove() -> None:
            for key in keys:
                path = self.path_of(key)
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                with contextlib.suppress(OSError):  # the media's directory, once empty
                    path.parent.rmdir()

        await asyncio.to_thread(remove)

    def url(self, key: str) -> str:
        return f"{self.server_url}/media/{check_key(key)}"

    async def locate(self, key: str) -> Located | None:
        path = self.path_of(key)
        return Located(path=path) if path.is_file() else None


def _copy_atomically(source: Path, target: Path) -> None:
    """Readers never see a half-written file: copy beside it, then rename over."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}.part")
    shutil.copyfile(source, partial)
    partial.replace(target)
