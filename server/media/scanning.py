"""Virus scanning of uploaded files before anything is served.

Two scanners behind one protocol: `ClamdScanner` talks to a ClamAV daemon over its INSTREAM
protocol (TCP or a Unix socket), `NoScanner` is the embedded default (scanning off).

The contract the media pipeline relies on: a file is served only after a `ScanResult` with
`clean=True`. Anything that keeps the scanner from giving a verdict (daemon down, protocol
error, timeout) raises `ScannerUnavailable`, and the caller retries later; it is never read as
"clean". A verdict the daemon refuses to give for this file (larger than its StreamMaxLength)
comes back as `clean=False` with `refused` saying why: retrying cannot help, and the file is
not proven clean, so it is not served.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol
from urllib.parse import urlsplit


@dataclass(frozen=True)
class ScanResult:
    """The scanner's verdict on one file.

    `signature` names what was found when `clean` is False because of a match. `refused` is
    set (and `clean` False) when the scanner declined to scan the whole file, e.g. clamd's
    StreamMaxLength: not infected as far as anyone knows, but not proven clean either."""

    clean: bool
    signature: str | None
    refused: str | None = None


class ScannerUnavailable(Exception):
    """No verdict: the scanner is unreachable, answered something unexpected or timed out.

    The caller retries later; the file is never treated as clean meanwhile."""


class Scanner(Protocol):
    async def scan_file(self, path: Path) -> ScanResult: ...


class NoScanner:
    """Scanning off (the embedded default, no scanner configured): every file is reported
    clean without being looked at. Deployments that accept uploads from the public configure
    a `ClamdScanner` instead."""

    async def scan_file(self, path: Path) -> ScanResult:
        return ScanResult(clean=True, signature=None)


# clamd's answers, after the "stream: " prefix (z-commands end each reply with a NUL byte).
_FOUND_SUFFIX = " FOUND"
_SIZE_LIMIT_REPLY = "INSTREAM size limit exceeded"
_SIZE_LIMIT_REFUSAL = "larger than the scanner accepts (clamd StreamMaxLength)"
_MAX_REPLY_BYTES = 4096


class ClamdScanner:
    """A ClamAV daemon reached at `address`: "tcp://host:port" or "unix:///path/to/socket".

    Files are streamed with INSTREAM (`zINSTREAM\\0`, then chunks each prefixed by its length
    as a 4-byte big-endian integer, then a zero-length chunk), so clamd needs no access to our
    file system. The file is read `chunk_size` bytes at a time in a worker thread: memory stays
    flat and the event loop never waits on the disk. `timeout_s` bounds the whole scan."""

    def __init__(self, address: str, *, timeout_s: float = 30.0, chunk_size: int = 65536) -> None:
        if chunk_size < 1:
            raise ValueError("chunk_size must be positive")
        if timeout_s <= 0:
            raise ValueError("timeout_s must be positive")
        parts = urlsplit(address)
        self._unix_path: str | None = None
        self._host: str | None = None
        self._port: int | None = None
        if parts.scheme == "unix" and parts.path:
            self._unix_path = parts.path
        elif parts.scheme == "tcp" and parts.hostname and parts.port:
            self._host, self._port = parts.hostname, parts.port
        else:
            raise ValueError(f"clamd address {address!r}: expected tcp://host:port or unix:///path")
        self.address = address
        self.timeout_s = timeout_s
        self.chunk_size = chunk_size

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        try:
            if self._unix_path is not None:
                return await asyncio.open_unix_connection(self._unix_path)
            return await asyncio.open_connection(self._host, self._port)
        except OSError as exc:
            raise ScannerUnavailable(f"clamd at {self.address} unreachable: {exc}") from exc

    @staticmethod
    async def _read_reply(reader: asyncio.StreamReader) -> str:
        try:
            raw = await reader.readuntil(b"\0")
        except asyncio.IncompleteReadError as exc:
            if not exc.partial:
                raise ScannerUnavailable("clamd closed the connection without a reply") from exc
            raw = exc.partial  # some clamd errors are sent without the terminator
        except asyncio.LimitOverrunError as exc:
            raise ScannerUnavailable("clamd reply too long") from exc
        except OSError as exc:
            raise ScannerUnavailable(f"clamd connection lost: {exc}") from exc
        return raw.rstrip(b"\0").decode("utf-8", "replace").strip()

    async def ping(self) -> bool:
        """True when clamd answers PING with PONG within the timeout; never raises."""
        try:
            async with asyncio.timeout(self.timeout_s):
                reader, writer = await self._connect()
                try:
                    writer.write(b"zPING\0")
                    await writer.drain()
                    return await self._read_reply(reader) == "PONG"
                finally:
                    writer.close()
                    with contextlib.suppress(OSError):
                        await writer.wait_closed()
        except (ScannerUnavailable, OSError, TimeoutError):
            return False

    async def scan_file(self, path: Path) -> ScanResult:
        try:
            async with asyncio.timeout(self.timeout_s):
                return await self._scan(path)
        except TimeoutError as exc:
            raise ScannerUnavailable(
                f"clamd at {self.address} gave no verdict within {self.timeout_s} s"
            ) from exc

    async def _scan(self, path: Path) -> ScanResult:
        # Opening is the caller's problem (a missing file is a bug upstream, not an outage).
        with path.open("rb") as file:
            reader, writer = await self._connect()
            try:
                writer.write(b"zINSTREAM\0")
                # clamd may answer before the stream ends (size limit exceeded) and close the
                # socket; reading concurrently catches that reply instead of a broken pipe.
                reply_task = asyncio.ensure_future(self._read_reply(reader))
                try:
                    await self._stream(file, writer, reply_task)
                    reply = await reply_task
                finally:
                    if not reply_task.done():
                        reply_task.cancel()
                        with contextlib.suppress(BaseException):
                            await reply_task
            finally:
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
        return self._verdict(reply)

    async def _stream(
        self, file: BinaryIO, writer: asyncio.StreamWriter, reply_task: asyncio.Future[str]
    ) -> None:
        try:
            while not reply_task.done():
                chunk = await asyncio.to_thread(file.read, self.chunk_size)
                if not chunk:
                    writer.write(struct.pack(">I", 0))
                    await writer.drain()
                    return
                writer.write(struct.pack(">I", len(chunk)) + chunk)
                await writer.drain()
        except OSError as exc:
            # A peer that hung up mid-stream may have said why first: let the reply decide.
            await asyncio.wait({reply_task}, timeout=1.0)
            if not reply_task.done():
                raise ScannerUnavailable(f"clamd connection lost while streaming: {exc}") from exc

    def _verdict(self, reply: str) -> ScanResult:
        body = reply.removeprefix("stream:").strip()
        if body == "OK":
            return ScanResult(clean=True, signature=None)
        if body.endswith(_FOUND_SUFFIX):
            signature = body.removesuffix(_FOUND_SUFFIX).strip()
            return ScanResult(clean=False, signature=signature or "unknown")
        if _SIZE_LIMIT_REPLY in body:
            return ScanResult(clean=False, signature=None, refused=_SIZE_LIMIT_REFUSAL)
        raise ScannerUnavailable(f"unexpected clamd reply: {reply[:_MAX_REPLY_BYTES]!r}")
