"""Where media bytes live: one `ObjectStorage` interface, a local-directory backend (default)
and an S3-compatible one. `make_storage(settings)` picks the configured one."""

from __future__ import annotations

from server.config import Settings
from server.media.storage.base import ObjectStorage, StorageUnavailable, check_key
from server.media.storage.local import LocalStorage

__all__ = ["LocalStorage", "ObjectStorage", "StorageUnavailable", "check_key", "make_storage"]


def make_storage(settings: Settings) -> ObjectStorage:
    media = settings.media
    if media.storage == "s3":
        from server.media.storage.s3 import S3Storage

        return S3Storage(
            bucket=media.s3_bucket,
            prefix=media.s3_prefix,
            endpoint_url=media.s3_endpoint_url or None,
            region=media.s3_region,
            access_key_id=media.s3_access_key_id or None,
            secret_access_key=media.s3_secret_access_key or None,
            public_base_url=media.s3_public_base_url or None,
            presign_ttl_s=media.s3_presign_ttl_s,
            server_url=settings.server.public_url,
        )
    root = media.local_dir or str(settings.data_path / "media")
    return LocalStorage(root, server_url=settings.server.public_url)
