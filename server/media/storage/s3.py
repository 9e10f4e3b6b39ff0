"""S3-compatible object storage (aiobotocore). Objects are written with immutable cache headers;
clients get the CDN / public base URL when one is configured, else this server's /media/<key>,
which redirects to a short-lived presigned URL (so stored URLs never expire)."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import BotoCoreError, ClientError

from server.media.storage.base import Located, StorageUnavailable, check_key

CACHE_CONTROL = "public, max-age=31536000, immutable"
CHUNK = 256 * 1024
_MISSING = {"NoSuchKey", "404", "NotFound"}


class S3Storage:
    name = "s3"

    def __init__(
        self,
        *,
        bucket: str,
        prefix: str = "",
        endpoint_url: str | None = None,
        region: str = "us-east-1",
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        public_base_url: str | None = None,
        presign_ttl_s: int = 3600,
        server_url: str,
    ) -> None:
        if not bucket:
            raise ValueError("media.s3_bucket is required with media.storage = 's3'")
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.endpoint_url = endpoint_url
        self.region = region
        self.access_key_id = access_key_id
        self.secret_access_key = secret_access_key
        self.public_base_url = public_base_url.rstrip("/") if public_base_url else None
        self.presign_ttl_s = presign_ttl_s
        self.server_url = server_url.rstrip("/")
        self._stack = contextlib.AsyncExitStack()
        self._client: Any = None

    def object_key(self, key: str) -> str:
        return self.prefix + check_key(key)

    async def start(self) -> None:
        session = get_session()
        # Few retries: an upload waits on them, and a down store is a 503 to retry, not a hang.
        config = AioConfig(
            signature_version="s3v4",
            s3={"addressing_style": "path"},
            retries={"max_attempts": 3, "mode": "standard"},
            connect_timeout=5,
            read_timeout=60,
        )
        self._client = await self._stack.enter_async_context(
            session.create_client(
                "s3",
                region_name=self.region,
                endpoint_url=self.endpoint_url,
                aws_access_key_id=self.access_key_id,
                aws_secret_access_key=self.secret_access_key,
                config=config,
            )
        )

    async def close(self) -> None:
        await self._stack.aclose()
        self._client = None

    async def put_file(self, key: str, path: Path, content_type: str) -> None:
        try:
            with path.open("rb") as body:
                await self._client.put_object(
                    Bucket=self.bucket,
                    Key=self.object_key(key),
                    Body=body,
                    ContentType=content_type,
                    CacheControl=CACHE_CONTROL,
                )
        except (BotoCoreError, ClientError) as exc:
            raise StorageUnavailable(f"S3 put {key}: {exc}") from exc

    async def fetch_to(self, key: str, path: Path) -> None:
        try:
            response = await self._client.get_object(Bucket=self.bucket, Key=self.object_key(key))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in _MISSING:
                raise FileNotFoundError(key) from exc
            raise StorageUnavailable(f"S3 get {key}: {exc}") from exc
        except BotoCoreError as exc:
            raise StorageUnavailable(f"S3 get {key}: {exc}") from exc
        async with response["Body"] as stream:
            with path.open("wb") as out:
                while chunk := await stream.read(CHUNK):
                    out.write(chunk)

    async def delete(self, keys: Sequence[str]) -> None:
        for start in range(0, len(keys), 1000):  # the API's batch limit
            batch = [{"Key": self.object_key(k)} for k in keys[start : start + 1000]]
            try:
                await self._client.delete_objects(
                    Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True}
                )
            except (BotoCoreError, ClientError) as exc:
                raise StorageUnavailable(f"S3 delete: {exc}") from exc

    def url(self, key: str) -> str:
        if self.public_base_url:
            return f"{self.public_base_url}/{self.object_key(key)}"
        return f"{self.server_url}/media/{check_key(key)}"

    async def locate(self, key: str) -> Located | None:
        if self.public_base_url:
            return Located(redirect_url=self.url(key), permanent=True)
        url = await self._client.generate_presigned_url(
            "get_object",
            Params={"Bucket": self.bucket, "Key": self.object_key(key)},
            ExpiresIn=self.presign_ttl_s,
        )
        return Located(redirect_url=url)
