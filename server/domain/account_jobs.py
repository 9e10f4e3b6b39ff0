"""Job kinds of the accounts capability (loaded through server/capabilities.py)."""

from __future__ import annotations

from server.domain.accounts import password_reset_job
from server.domain.email_verification import email_verification_job
from server.jobs.registry import register

register("auth.password_reset", password_reset_job, timeout_s=60)
register("auth.email_verification", email_verification_job, timeout_s=60)
