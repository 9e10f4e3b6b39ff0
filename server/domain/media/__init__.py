"""The media capability: uploads (one request or resumable), their processing as durable jobs,
what clients see of them, and their lifecycle (attach, release, purge).

- intake.py: one upload's bytes under the limits, validated by content, stored, queued;
- resumable.py: tus 1.0 uploads (create, append at an offset, learn the offset, terminate);
- processing.py: the `media.process` job (scan, variants / renditions, ready or failed);
- lifecycle.py: attach to messages and profiles, release, purge;
- views.py: a media as its owner sees it.
"""

# Per-user gateway events (to the uploader's sessions).
MEDIA_READY = "media.ready"
MEDIA_FAILED = "media.failed"
