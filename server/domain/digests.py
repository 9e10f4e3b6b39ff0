"""Email for notifications: the durable `email.send` job, the one-email-per-batch mail (email
"on"), and the daily / weekly digests (email "daily" / "weekly", the default being daily).

Digests are periodic jobs (server/domain/notification_jobs.py): at each period start a fan-out
job walks the users notified during the period (keyset over notification_counters) and enqueues one
`notifications.digest` job per user. That job mails the unread notifications of the period in
the categories whose email preference is that digest, then records the period as sent, so a
retried or duplicated job does not mail twice.
"""

from __future__ import annotations

import html
import logging
import uuid
from datetime import datetime, timedelta
from typing import Any

from server.domain.notification_catalog import NotificationType, effective_settings, info
from server.jobs.queue import enqueue
from server.store import notifications as store

log = logging.getLogger(__name__)

DIGEST_ITEMS = 20
FANOUT_PAGE = 500
RETENTION_DAYS = 90


async def send_email_job(ctx: Any, payload: dict[str, Any]) -> None:
    """Job `email.send`: {to, subject, text, html?}."""
    await ctx.mailer.send(payload["to"], payload["subject"], payload["text"], payload.get("html"))


async def send_notification_email_job(ctx: Any, payload: dict[str, Any]) -> None:
    """Job `notifications.email`: one email for a notification (batch) the recipient has not
    read by the time its batching window closed."""
    row = await store.get(ctx.db, uuid.UUID(payload["notification_id"]))
    if row is None or row["is_read"]:
        return
    state = await store.digest_state(ctx.db, row["recipient_id"])
    if state is None or not state["is_active"]:
        return
    settings = effective_settings(state["prefs"])
    prefs = settings.categories[info(row["type"]).category]
    if not settings.email_enabled or prefs.email != "on":
        return
    base = ctx.settings.server.public_url.rstrip("/")
    text = (
        f"Hi @{state['username']},\n\n{row['content']}\n\n"
        f"See it on Nexgate: {base}/notifications\n\n"
        f"Change what we email you: {base}/settings/notifications\n"
    )
    await ctx.mailer.send(state["email"], row["content"][:120], text)


def _period_bounds(payload: dict[str, Any]) -> tuple[datetime, datetime]:
    until = datetime.fromisoformat(payload["period_start"])
    since = datetime.fromisoformat(payload["previous_start"])
    return since, until


async def digest_fanout_job(ctx: Any, payload: dict[str, Any]) -> None:
    """Job `notifications.digest_fanout`: {period: daily|weekly, period_start, previous_start}."""
    period = payload["period"]
    since, until = _period_bounds(payload)
    after = None
    queued = 0
    while True:
        users = await store.digest_candidates(
            ctx.db, since=since, after=after, weekly_only=period == "weekly", limit=FANOUT_PAGE
        )
        if not users:
            break
        async with ctx.db.transaction() as tx:
            for user in users:
                await enqueue(
                    tx,
                    "notifications.digest",
                    {
                        "user_id": str(user["user_id"]),
                        "period": period,
                        "since": since.isoformat(),
                        "until": until.isoformat(),
                    },
                    coalesce_key=f"digest:{period}:{user['user_id']}:{until.isoformat()}",
                )
        queued += len(users)
        last = users[-1]
        after = (last["last_notified_at"], last["user_id"])
    log.info("digests queued", extra={"period": period, "users": queued})


def render_digest(
    username: str, period: str, rows: list[dict[str, Any]], total: int, base_url: str
) -> tuple[str, str, str]:
    """(subject, text, html) of a digest email."""
    noun = "notification" if total == 1 else "notifications"
    subject = f"Your {period} Nexgate digest: {total} new {noun}"
    lines = [f"Hi @{username},", "", f"Here is what you missed: {total} new {noun}.", ""]
    lines += [f"- {row['content']}" for row in rows]
    if total > len(rows):
        lines.append(f"- ... and {total - len(rows)} more")
    lines += [
        "",
        f"See them all: {base_url}/notifications",
        f"Change what we email you: {base_url}/settings/notifications",
    ]
    items = "".join(f"<li>{html.escape(row['content'])}</li>" for row in rows)
    more = f"<p>... and {total - len(rows)} more</p>" if total > len(rows) else ""
    body = (
        f"<p>Hi @{html.escape(username)},</p><p>Here is what you missed: {total} new {noun}."
        f'</p><ul>{items}</ul>{more}<p><a href="{html.escape(base_url)}/notifications">'
        f'See them all</a> · <a href="{html.escape(base_url)}/settings/notifications">'
        f"Email settings</a></p>"
    )
    return subject, "\n".join(lines) + "\n", body


async def digest_job(ctx: Any, payload: dict[str, Any]) -> None:
    """Job `notifications.digest`: {user_id, period, since, until}."""
    user = uuid.UUID(payload["user_id"])
    period = payload["period"]
    since = datetime.fromisoformat(payload["since"])
    until = datetime.fromisoformat(payload["until"])
    state = await store.digest_state(ctx.db, user)
    if state is None or not state["is_active"]:
        return
    already = state[f"{period}_digest_until"]
    if already is not None and already >= until:
        return  # this period was mailed already (a retried or duplicated job)
    if already is not None:
        since = max(since, already)
    settings = effective_settings(state["prefs"])
    if not settings.email_enabled:
        return
    types = sorted(
        t.value for t in NotificationType if settings.categories[info(t).category].email == period
    )
    if not types:
        return
    rows, total = await store.digest_rows(
        ctx.db, user, since=since, until=until, types=types, limit=DIGEST_ITEMS
    )
    if total:
        subject, text, body = render_digest(
            state["username"], period, rows, total, ctx.settings.server.public_url.rstrip("/")
        )
        await ctx.mailer.send(state["email"], subject, text, body)
    await store.mark_digest_sent(ctx.db, user, period, until)


def _uuid7_floor(moment: datetime) -> uuid.UUID:
    """The smallest UUIDv7 of a millisecond: ids below it were created before `moment`."""
    ms = int(moment.timestamp() * 1000)
    return uuid.UUID(int=(ms << 80) | (0x7 << 76))


async def cleanup_job(ctx: Any, payload: dict[str, Any]) -> None:
    """Job `notifications.cleanup`: forget notifications older than RETENTION_DAYS."""
    cutoff = datetime.fromisoformat(payload["period_start"]) - timedelta(days=RETENTION_DAYS)
    cutoff_id = _uuid7_floor(cutoff)
    total = 0
    while True:
        async with ctx.db.transaction() as tx:
            deleted = await store.delete_older_than(tx, cutoff_id, cutoff, 1000)
        total += deleted
        if deleted < 1000:
            break
    log.info("old notifications deleted", extra={"count": total})


async def reconcile_job(ctx: Any, payload: dict[str, Any]) -> None:
    """Job `notifications.reconcile`: recount unread counters (fixes any drift), in pages."""
    after = None
    fixed = 0
    while True:
        users = await store.counter_page(ctx.db, after, 200)
        if not users:
            break
        async with ctx.db.transaction() as tx:
            fixed += await store.reconcile_counters(tx, users)
        after = users[-1]
    if fixed:
        log.warning("unread counters corrected", extra={"count": fixed})
