"""The posts capability's background work: scheduled publication and the 30-day purge of
deleted posts. Imported by the capability manifest (server/capabilities.py)."""

from __future__ import annotations

from server.domain.posts import likes, polls, publishing, removal
from server.jobs.registry import every, register

register(publishing.PUBLISH_SCHEDULED_JOB, publishing.publish_scheduled, timeout_s=60)
register(polls.CLOSE_JOB, polls.close_expired_job, timeout_s=60)
register("posts.purge_deleted", removal.purge_deleted_posts, timeout_s=3600)
every("posts.purge_deleted", "posts.purge_deleted", "daily", hour=2, minute=30)
register("posts.reconcile_counters", likes.reconcile_counters_job, timeout_s=3600)
every("posts.reconcile_counters", "posts.reconcile_counters", "daily", hour=4, minute=40)
