"""Virus scanning in the media pipeline, against a real clamd (Debian's clamav-daemon) started
by the test with a locally made signature (no signature download is possible here): an
infected upload fails and is never served, a clean one is processed, a scanner that is down
leaves the upload waiting (retried), never passed unscanned."""

from __future__ import annotations

import importlib.util
import io
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image, PngImagePlugin

from tests.helpers import free_port
from tests.media_support import MEDIA_SETTINGS, encoded, get_media, upload_ok
from tests.messaging_support import gateway, next_of
from tests.notifications_support import run_jobs

pytestmark = [
    pytest.mark.app_settings(**MEDIA_SETTINGS),
    pytest.mark.skipif(shutil.which("clamd") is None, reason="clamd (clamav-daemon) not installed"),
    pytest.mark.skipif(
        importlib.util.find_spec("server.media.scanning") is None,
        reason="this build has no virus scanner module",
    ),
]
MARKER = b"NEXGATE-TEST-MALWARE-7f3a"


@pytest.fixture(scope="module")
def clamd_address(tmp_path_factory) -> Iterator[str]:
    """clamd on a free port, its database one signature matching MARKER anywhere in a file."""
    root = tmp_path_factory.mktemp("clamd")
    (root / "db").mkdir()
    (root / "db" / "nexgate-test.ndb").write_text(f"NexgateTestMarker:0:*:{MARKER.hex()}\n")
    port = free_port()
    (root / "clamd.conf").write_text(
        f"DatabaseDirectory {root / 'db'}\nTCPSocket {port}\nTCPAddr 127.0.0.1\n"
        f"Foreground yes\nLogFile {root / 'clamd.log'}\n"
    )
    proc = subprocess.Popen(
        ["clamd", "-c", str(root / "clamd.conf")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                    sock.sendall(b"zPING\0")
                    if sock.recv(16).startswith(b"PONG"):
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                log = root / "clamd.log"
                raise RuntimeError(
                    f"clamd did not start: {log.read_text() if log.exists() else ''}"
                )
            time.sleep(0.2)
        yield f"tcp://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture
def overrides(clamd_address, request) -> dict:
    address = getattr(request, "param", None) or clamd_address
    return {"media": {"scan_clamd_address": address}}


def stored_for(settings, media_id: str) -> list[Path]:
    return list(Path(settings.data_path / "media").rglob(f"*{media_id}*"))


def infected_png() -> bytes:
    """A valid PNG whose text chunk carries the test signature."""
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", MARKER.decode())
    out = io.BytesIO()
    Image.new("RGB", (48, 48), (10, 200, 30)).save(out, "PNG", pnginfo=info)
    return out.getvalue()


async def test_an_infected_upload_fails_and_is_never_served(client, alice, settings):
    gw = await gateway(client, alice)
    try:
        media = await upload_ok(client, alice, infected_png(), "cute-cat.png")
        await run_jobs(client)
        event = await next_of(gw, "media.failed")
    finally:
        await gw.close()
    assert event.data["media_id"] == media["id"]
    assert "virus scanner" in event.data["reason"]
    media = await get_media(client, alice, media["id"])
    assert media["status"] == "failed" and "NexgateTestMarker" in media["failure_reason"]
    assert media["url"] is None and media["sizes"] == {}
    for name in ("original.jpg", "large.webp", "thumbnail.jpg"):
        assert (await client.get(f"/media/m/{media['id']}/{name}")).status == 404
    assert not stored_for(settings, media["id"])


async def test_a_clean_upload_is_scanned_and_processed(client, alice):
    media = await upload_ok(client, alice, encoded("PNG", 64, 64))
    await run_jobs(client)
    assert (await get_media(client, alice, media["id"]))["status"] == "ready"


@pytest.mark.parametrize("overrides", [f"tcp://127.0.0.1:{free_port()}"], indirect=True)
async def test_a_scanner_that_is_down_holds_the_upload_back(client, alice):
    media = await upload_ok(client, alice, encoded("PNG", 64, 64))
    await run_jobs(client)  # fails, retried later
    media = await get_media(client, alice, media["id"])
    assert media["status"] == "processing" and media["url"] is None
    assert (await client.get(f"/media/m/{media['id']}/original.jpg")).status == 404
