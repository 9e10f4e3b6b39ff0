"""Job kinds of the accounts capability (loaded through server/capabilities.py)."""

from __future__ import annotations

from server.domain.accounts import password_reset_job
from server.domain.email_verification import email_verification_job, purge_unverified_accounts
from server.jobs.registry import every, register

register("auth.password_reset", password_reset_job, timeout_s=60)
register("auth.email_verification", email_verification_job, timeout_s=60)
register("auth.purge_unverified", purge_unverified_accounts, timeout_s=600)
every("auth.purge_unverified", "auth.purge_unverified", "daily", hour=5, minute=10)
