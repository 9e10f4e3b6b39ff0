"""The media capability's job kinds and periodic jobs (loaded by server/capabilities.py)."""

from __future__ import annotations

from server.domain.media import lifecycle, processing
from server.jobs.registry import every, register

# Videos: a 10-minute 1080p source transcoded into three renditions on a small box.
register("media.process", processing.process_media_job, timeout_s=3600)
register("media.delete_objects", lifecycle.delete_objects_job, timeout_s=600)
register("media.purge", lifecycle.purge_job, timeout_s=3600)
every("media.purge", "media.purge", "hourly", minute=41)
