"""Virus scanning against a real clamd (tests/fixtures/clamd.py) loaded with a locally made
EICAR signature: what an uploader would see is an infected file refused and a clean one
accepted; what operators rely on is that no outage or odd reply ever reads as "clean"."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from server.media.scanning import ClamdScanner, NoScanner, ScannerUnavailable, ScanResult
from tests.helpers import free_port


@pytest.fixture(params=["tcp", "unix"])
def scanner(request, clamd) -> ClamdScanner:
    address = clamd.tcp_address if request.param == "tcp" else clamd.unix_address
    return ClamdScanner(address, timeout_s=20)


async def test_eicar_file_is_infected_and_named(scanner, clamd, tmp_path):
    infected = tmp_path / "holiday.jpg"  # the name says nothing: clamd looks at the bytes
    infected.write_bytes(clamd.eicar)

    result = await scanner.scan_file(infected)

    assert result.clean is False
    assert result.signature is not None and result.signature.startswith(clamd.signature)
    assert result.refused is None


async def test_ordinary_file_is_clean(scanner, tmp_path):
    photo = tmp_path / "photo.bin"
    photo.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40)

    assert await scanner.scan_file(photo) == ScanResult(clean=True, signature=None)
    assert await scanner.ping() is True


async def test_large_files_stream_in_chunks_and_a_signature_across_chunks_is_found(clamd, tmp_path):
    scanner = ClamdScanner(clamd.tcp_address, chunk_size=1024, timeout_s=20)
    filler = bytes(range(256)) * 4 * 50  # 51,200 bytes: fifty chunks
    clean = tmp_path / "clean.bin"
    clean.write_bytes(filler)
    # The signature starts 20 bytes before a chunk boundary, so it only matches if clamd
    # saw the chunks as one contiguous stream.
    infected = tmp_path / "infected.bin"
    infected.write_bytes(filler[: 1024 * 30 - 20] + clamd.eicar + filler[: 1024 * 10])

    assert (await scanner.scan_file(clean)).clean is True
    result = await scanner.scan_file(infected)
    assert result.clean is False
    assert result.signature is not None and result.signature.startswith(clamd.signature)


async def test_file_over_stream_max_length_is_refused_not_clean(clamd, tmp_path):
    scanner = ClamdScanner(clamd.tcp_address, timeout_s=20)
    big = tmp_path / "big.mp4"
    big.write_bytes(b"\0" * (clamd.stream_max_bytes + 65536))

    result = await scanner.scan_file(big)

    assert result.clean is False
    assert result.signature is None
    assert result.refused is not None and "StreamMaxLength" in result.refused
    # The daemon is still there for the next file.
    assert await scanner.ping() is True


async def test_stopped_clamd_is_unavailable_never_clean(clamd_factory, tmp_path):
    daemon = clamd_factory()
    upload = tmp_path / "upload.bin"
    upload.write_bytes(b"nothing to see" * 100)
    for address in (daemon.tcp_address, daemon.unix_address):
        assert (await ClamdScanner(address).scan_file(upload)).clean is True

    daemon.stop()

    for address in (daemon.tcp_address, daemon.unix_address):
        scanner = ClamdScanner(address, timeout_s=5)
        assert await scanner.ping() is False
        with pytest.raises(ScannerUnavailable):
            await scanner.scan_file(upload)


@contextlib.asynccontextmanager
async def _fake_daemon(handler):
    """A TCP peer that is not a working clamd (hangs, or answers nonsense)."""
    port = free_port()
    server = await asyncio.start_server(handler, "127.0.0.1", port)
    try:
        yield f"tcp://127.0.0.1:{port}"
    finally:
        server.close()
        await server.wait_closed()


async def test_a_daemon_that_never_answers_times_out_as_unavailable(tmp_path):
    upload = tmp_path / "upload.bin"
    upload.write_bytes(b"x" * 10_000)
    release = asyncio.Event()

    async def silent(reader, writer):
        with contextlib.suppress(ConnectionError):
            while await reader.read(65536):
                pass  # swallows the stream, never replies
        await release.wait()
        writer.close()

    async with _fake_daemon(silent) as address:
        scanner = ClamdScanner(address, timeout_s=0.5)
        with pytest.raises(ScannerUnavailable, match="no verdict"):
            await scanner.scan_file(upload)
        assert await scanner.ping() is False
        release.set()


@pytest.mark.parametrize(
    "reply",
    [b"stream: Can't allocate memory ERROR\0", b"HELLO?\0", b""],
    ids=["clamd-error", "garbage", "hang-up"],
)
async def test_unexpected_replies_are_unavailable_never_clean(tmp_path, reply):
    upload = tmp_path / "upload.bin"
    upload.write_bytes(b"x" * 10_000)

    async def odd(reader, writer):
        await reader.readuntil(b"\0")
        writer.write(reply)
        await writer.drain()
        writer.close()

    async with _fake_daemon(odd) as address:
        with pytest.raises(ScannerUnavailable):
            await ClamdScanner(address, timeout_s=5).scan_file(upload)


async def test_scanning_off_reports_every_file_clean(tmp_path):
    upload = tmp_path / "upload.bin"
    upload.write_bytes(b"X5O!P%@AP")

    assert await NoScanner().scan_file(upload) == ScanResult(clean=True, signature=None)


@pytest.mark.parametrize(
    "address", ["127.0.0.1:3310", "http://127.0.0.1:3310", "tcp://127.0.0.1", "unix://"]
)
def test_a_malformed_address_is_refused_at_startup(address):
    with pytest.raises(ValueError, match="clamd address"):
        ClamdScanner(address)
