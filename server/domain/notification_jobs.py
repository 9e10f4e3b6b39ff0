"""The notifications capability's background work: its job kinds and periodic jobs.

Imported by the capability manifest (server/capabilities.py) wherever workers run; the
handlers live in server/domain/digests.py (email, digests, retention, counters) and
server/domain/push.py.
"""

from __future__ import annotations

from server.domain import digests, push
from server.jobs.registry import every, register

register("email.send", digests.send_email_job, timeout_s=60)  # also accounts' reset mail
register("push.send", push.send_push_job, timeout_s=60)
register("notifications.email", digests.send_notification_email_job, timeout_s=60)
register("notifications.digest_fanout", digests.digest_fanout_job, timeout_s=3600)
register("notifications.digest", digests.digest_job, timeout_s=120)
register("notifications.cleanup", digests.cleanup_job, timeout_s=3600)
register("notifications.reconcile", digests.reconcile_job, timeout_s=3600)

# Periodic (UTC); the digest slot is configurable (settings.jobs.digest_hour_utc / _weekday).
every(
    "notifications.digest.daily",
    "notifications.digest_fanout",
    "daily",
    hour=lambda s: s.jobs.digest_hour_utc,
    payload={"period": "daily"},
)
every(
    "notifications.digest.weekly",
    "notifications.digest_fanout",
    "weekly",
    hour=lambda s: s.jobs.digest_hour_utc,
    weekday=lambda s: s.jobs.digest_weekday,
    payload={"period": "weekly"},
)
every("notifications.cleanup", "notifications.cleanup", "daily", hour=3)
every("notifications.reconcile", "notifications.reconcile", "daily", hour=4)
