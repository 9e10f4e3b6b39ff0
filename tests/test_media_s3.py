"""The S3 storage backend against a real S3-compatible HTTP server (moto's standalone server,
started by the `s3_endpoint` fixture): uploads land in the bucket, variants are served through
presigned or public/CDN URLs, the private upload never is, and purging deletes the objects."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import aiohttp
import pytest
from aiobotocore.session import get_session
from PIL import Image

from server.clock import ManualClock
from server.jobs.queue import enqueue
from tests.fixtures.s3 import ACCESS_KEY, SECRET_KEY
from tests.helpers import expect_problem, free_port
from tests.media_support import MEDIA_SETTINGS, encoded, jpeg_with_exif, ready_media, upload
from tests.notifications_support import ctx_of, run_jobs

pytestmark = pytest.mark.app_settings(**MEDIA_SETTINGS)
CDN = "https://cdn.example.test"


@pytest.fixture
def overrides(request, s3_server):
    extra = getattr(request, "param", {})
    return {"media": s3_server.settings(**extra)}


async def objects(s3_server) -> dict[str, dict]:
    async with get_session().create_client(
        "s3",
        region_name="us-east-1",
        endpoint_url=s3_server.endpoint_url,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
    ) as s3:
        listed = await s3.list_objects_v2(Bucket=s3_server.bucket)
        found = {}
        for item in listed.get("Contents", []):
            head = await s3.head_object(Bucket=s3_server.bucket, Key=item["Key"])
            found[item["Key"]] = head
        return found


async def test_variants_are_stored_in_the_bucket_and_served_by_presigned_urls(
    client, alice, s3_server
):
    media = await ready_media(client, alice, jpeg_with_exif(640, 480, orientation=1))
    stored = await objects(s3_server)
    prefix = f"nexgate/m/{media['id']}/"
    assert sorted(stored) == sorted(
        prefix + f"{name}.{ext}"
        for name in ("thumbnail", "medium", "large", "original")
        for ext in ("webp", "jpg")
    ), "the private upload is deleted once processed"
    head = stored[prefix + "large.webp"]
    assert head["ContentType"] == "image/webp"
    assert "immutable" in head["CacheControl"]

    # The stable URL is this server's, redirecting to a short-lived presigned one.
    url = media["sizes"]["large"]["jpeg_url"]
    resp = await client.get(url[url.index("/media/") :], allow_redirects=False)
    assert resp.status == 302
    presigned = resp.headers["Location"]
    assert presigned.startswith(s3_server.endpoint_url) and "Signature" in presigned
    async with aiohttp.ClientSession() as http, http.get(presigned) as got:
        assert got.status == 200
        image = Image.open(io.BytesIO(await got.read()))
        assert image.size == (640, 480) and len(image.getexif()) == 0


@pytest.mark.parametrize("overrides", [{"s3_public_base_url": CDN}], indirect=True)
async def test_a_cdn_base_url_is_used_when_configured(client, alice, s3_server):
    media = await ready_media(client, alice, encoded("PNG", 64, 64))
    url = media["sizes"]["thumbnail"]["webp_url"]
    assert url == f"{CDN}/nexgate/m/{media['id']}/thumbnail.webp"
    resp = await client.get(f"/media/m/{media['id']}/thumbnail.webp", allow_redirects=False)
    assert resp.status == 301 and resp.headers["Location"] == url


async def test_purging_an_unattached_upload_deletes_its_objects(client, alice, s3_server):
    clock = ManualClock(datetime(2026, 5, 6, 7, 0, tzinfo=UTC))
    ctx_of(client).clock = clock
    await ready_media(client, alice, encoded("PNG", 64, 64))
    assert await objects(s3_server)
    clock.advance(hours=25)
    async with ctx_of(client).db.transaction() as tx:
        await enqueue(tx, "media.purge", {})
    await run_jobs(client)
    assert await objects(s3_server) == {}


@pytest.mark.parametrize(
    "overrides", [{"s3_endpoint_url": f"http://127.0.0.1:{free_port()}"}], indirect=True
)
async def test_storage_down_is_a_503_and_nothing_is_recorded(client, alice):
    resp = await upload(client, alice, encoded("PNG", 64, 64))
    problem = await expect_problem(resp, 503)
    assert "storage" in problem["detail"]
    assert await ctx_of(client).db.fetchval("SELECT count(*) FROM media") == 0
