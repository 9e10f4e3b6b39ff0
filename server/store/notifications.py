"""Notifications, their per-user unread counters and the users' notification preferences.

Lock order everywhere: notification rows first, then the recipient's counter row."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from server.store.db import Queries, Row, jsonb
from server.store.visibility import blocked_either_way

COLUMNS = """n.id, n.recipient_id, n.type, n.entity_type, n.entity_id, n.actor_id, n.actor_ids,
             n.actor_count, n.event_count, n.data, n.content, n.visible, n.is_read, n.read_at,
             n.created_at, n.latest_at"""

# Profiles of the first three actors (latest first), as a JSON list.
# (Primary-key look-ups: `id = ANY(...)` is an index scan whatever the table statistics say.)
ACTOR_PROFILES = """(SELECT coalesce(jsonb_agg(jsonb_build_object(
                        'id', u.id, 'username', u.username, 'display_name', u.display_name,
                        'profile_picture_url', u.profile_picture_url, 'is_verified', u.is_verified)
                        ORDER BY array_position({alias}.actor_ids, u.id)), '[]'::jsonb)
                     FROM users u WHERE u.id = ANY({alias}.actor_ids[1:3]))"""


async def recipient_context(q: Queries, recipient: uuid.UUID, actor: uuid.UUID | None) -> Row:
    """Everything notify() decides on, in one round trip: does the recipient exist, do they and
    the actor block each other, does the recipient mute or follow the actor, their preferences."""
    return await q.fetchrow_one(
        f"""SELECT
             EXISTS (SELECT 1 FROM users WHERE id = %(r)s AND is_active) AS recipient_active,
             (%(a)s::uuid IS NOT NULL AND {blocked_either_way("%(r)s", "%(a)s")}) AS blocked,
             (%(a)s::uuid IS NOT NULL AND EXISTS (
                SELECT 1 FROM mutes WHERE muter_id = %(r)s AND muted_id = %(a)s)) AS muting,
             (%(a)s::uuid IS NOT NULL AND EXISTS (
                SELECT 1 FROM follows WHERE follower_id = %(r)s AND following_id = %(a)s
                                        AND status = 'accepted')) AS follows_actor,
             (SELECT prefs FROM notification_settings WHERE user_id = %(r)s) AS prefs""",
        {"r": recipient, "a": actor},
    )


# Closes the open batch of a key whose window (from its first event) has passed. Sent in the
# same round trip as the upsert that follows it (a later statement of the same transaction sees
# its effect), so a notification costs one round trip less.
_CLOSE_EXPIRED_BATCH = """UPDATE notifications SET batch_open = false
           WHERE recipient_id = %(r)s AND type = %(t)s AND entity_type = %(et)s
             AND entity_id = %(e)s AND batch_open
             AND created_at <= %(now)s - make_interval(secs => %(w)s);
"""


async def upsert_batch(
    q: Queries,
    *,
    id: uuid.UUID,
    recipient: uuid.UUID,
    type: str,
    entity_type: str,
    entity_id: uuid.UUID,
    actor: uuid.UUID | None,
    data: dict[str, Any],
    visible: bool,
    window_s: float,
    max_actors: int,
    now: datetime,
    events: int = 1,
) -> Row | None:
    """Close the key's batch if its window has passed, then insert a notification or fold this
    event into the open batch of the same key: the actor moves to the front of the (capped)
    actor list, counts grow, data merges, latest_at moves. One round trip.

    Atomic under concurrency: the unique partial index on the batch key makes a concurrent
    second insert wait for the first and then update it. Returns the row with `inserted` and
    `actors` (profiles of the first three actors); None if the open batch's window had passed.
    """
    return await q.fetchrow(
        _CLOSE_EXPIRED_BATCH
        + f"""WITH up AS (
              INSERT INTO notifications AS n
                (id, recipient_id, type, entity_type, entity_id, actor_id, actor_ids,
                 actor_count, event_count, data, visible, created_at, latest_at)
              VALUES (%(id)s, %(r)s, %(t)s, %(et)s, %(e)s, %(a)s,
                      CASE WHEN %(a)s::uuid IS NULL THEN '{{}}'::uuid[]
                           ELSE ARRAY[%(a)s::uuid] END,
                      CASE WHEN %(a)s::uuid IS NULL THEN 0 ELSE 1 END, %(events)s, %(data)s,
                      %(visible)s,
                      %(now)s, %(now)s)
              ON CONFLICT (recipient_id, type, entity_type, entity_id) WHERE batch_open
              DO UPDATE SET
                actor_id = coalesce(EXCLUDED.actor_id, n.actor_id),
                actor_ids = CASE WHEN EXCLUDED.actor_id IS NULL THEN n.actor_ids
                   ELSE (ARRAY[EXCLUDED.actor_id]
                         || array_remove(n.actor_ids, EXCLUDED.actor_id))[1:%(cap)s] END,
                actor_count = n.actor_count + CASE
                   WHEN EXCLUDED.actor_id IS NULL OR EXCLUDED.actor_id = ANY(n.actor_ids)
                   THEN 0 ELSE 1 END,
                event_count = n.event_count + EXCLUDED.event_count,
                data = n.data || EXCLUDED.data,
                latest_at = greatest(n.latest_at, %(now)s)
              WHERE n.created_at > %(now)s - make_interval(secs => %(w)s)
              RETURNING {COLUMNS}, (xmax = 0) AS inserted
            )
            SELECT up.*, {ACTOR_PROFILES.format(alias="up")} AS actors FROM up""",
        {
            "id": id,
            "r": recipient,
            "t": type,
            "et": entity_type,
            "e": entity_id,
            "a": actor,
            "data": jsonb(data),
            "visible": visible,
            "w": window_s,
            "cap": max_actors,
            "now": now,
            "events": events,
        },
    )


async def set_content_and_count(
    q: Queries,
    notification_id: uuid.UUID,
    content: str,
    recipient: uuid.UUID,
    delta: int,
    now: datetime,
) -> int:
    """Store the rendered text and move the recipient's unread counter; returns the counter."""
    return await q.fetchval(
        """WITH c AS (UPDATE notifications SET content = %(content)s WHERE id = %(id)s)
           INSERT INTO notification_counters AS nc (user_id, unread, last_notified_at)
           VALUES (%(r)s, greatest(%(d)s, 0), %(now)s)
           ON CONFLICT (user_id) DO UPDATE
             SET unread = greatest(nc.unread + %(d)s, 0),
                 last_notified_at = greatest(nc.last_notified_at, %(now)s)
           RETURNING unread""",
        {"id": notification_id, "content": content, "r": recipient, "d": delta, "now": now},
    )


async def adjust_counter(q: Queries, user: uuid.UUID, delta: int) -> int:
    return await q.fetchval(
        """INSERT INTO notification_counters AS nc (user_id, unread) VALUES (%(u)s, 0)
           ON CONFLICT (user_id) DO UPDATE SET unread = greatest(nc.unread + %(d)s, 0)
           RETURNING unread""",
        {"u": user, "d": delta},
    )


async def unread_count(q: Queries, user: uuid.UUID) -> int:
    """O(1): one primary-key lookup of the counter row."""
    value = await q.fetchval("SELECT unread FROM notification_counters WHERE user_id = %s", (user,))
    return value or 0


async def list_page(
    q: Queries,
    user: uuid.UUID,
    *,
    limit: int,
    after: tuple[datetime, uuid.UUID] | None,
    unread_only: bool,
    types: list[str] | None,
) -> list[Row]:
    """Newest first by (latest_at, id), `limit + 1` rows; each an index range scan."""
    where = ["n.recipient_id = %(u)s", "n.visible"]
    params: dict[str, Any] = {"u": user, "limit": limit + 1}
    if unread_only:
        where.append("NOT n.is_read")
    if types:
        where.append("n.type = ANY(%(types)s)")
        params["types"] = types
    if after is not None:
        where.append("(n.latest_at, n.id) < (%(at)s, %(aid)s)")
        params["at"], params["aid"] = after
    return await q.fetch(
        f"""SELECT {COLUMNS}, {ACTOR_PROFILES.format(alias="n")} AS actors
            FROM notifications n
            WHERE {" AND ".join(where)}
            ORDER BY n.latest_at DESC, n.id DESC
            LIMIT %(limit)s""",
        params,
    )


async def get(q: Queries, notification_id: uuid.UUID) -> Row | None:
    return await q.fetchrow(
        f"""SELECT {COLUMNS}, {ACTOR_PROFILES.format(alias="n")} AS actors
            FROM notifications n WHERE n.id = %s""",
        (notification_id,),
    )


async def mark_read(q: Queries, notification_id: uuid.UUID, user: uuid.UUID) -> Row | None:
    """Mark one of `user`'s notifications read (closing its batch). Returns {changed, visible,
    read_at}, or None when `user` has no such notification."""
    return await q.fetchrow(
        """WITH target AS (
             SELECT id, is_read AS was_read FROM notifications
             WHERE id = %(id)s AND recipient_id = %(u)s FOR UPDATE
           ), upd AS (
             UPDATE notifications n SET is_read = true, batch_open = false,
               read_at = coalesce(n.read_at, now())
             FROM target WHERE n.id = target.id
             RETURNING n.id, n.visible, n.read_at, NOT target.was_read AS changed
           )
           SELECT * FROM upd""",
        {"id": notification_id, "u": user},
    )


async def mark_all_read(q: Queries, user: uuid.UUID) -> int:
    """Mark every unread notification of `user` read; returns how many changed."""
    return await q.fetchval(
        """WITH upd AS (
             UPDATE notifications SET is_read = true, batch_open = false, read_at = now()
             WHERE recipient_id = %s AND NOT is_read AND visible
             RETURNING 1
           ) SELECT count(*) FROM upd""",
        (user,),
    )


async def mark_entity_read(
    q: Queries, user: uuid.UUID, entity_type: str, entity_id: uuid.UUID
) -> list[Row]:
    """Mark `user`'s unread notifications about one entity read; returns the changed rows."""
    return await q.fetch(
        """UPDATE notifications SET is_read = true, batch_open = false, read_at = now()
           WHERE recipient_id = %s AND entity_type = %s AND entity_id = %s AND NOT is_read
           RETURNING id, visible""",
        (user, entity_type, entity_id),
    )


async def delete(q: Queries, notification_id: uuid.UUID, user: uuid.UUID) -> Row | None:
    return await q.fetchrow(
        """DELETE FROM notifications WHERE id = %s AND recipient_id = %s
           RETURNING id, is_read, visible""",
        (notification_id, user),
    )


async def rows_with_actor(
    q: Queries,
    *,
    recipient: uuid.UUID,
    actor: uuid.UUID,
    type: str | None = None,
    entity_type: str | None = None,
    entity_id: uuid.UUID | None = None,
    open_only: bool = False,
) -> list[Row]:
    """`recipient`'s notifications `actor` appears in (locked), optionally for one key."""
    where = ["recipient_id = %(r)s", "%(a)s = ANY(actor_ids)"]
    params: dict[str, Any] = {"r": recipient, "a": actor}
    if type is not None:
        where.append("type = %(t)s AND entity_type = %(et)s AND entity_id = %(e)s")
        params.update(t=type, et=entity_type, e=entity_id)
    if open_only:
        where.append("batch_open")
    return await q.fetch(
        f"""SELECT id, type, actor_ids, actor_count, event_count, data, is_read, visible
            FROM notifications WHERE {" AND ".join(where)}
            ORDER BY id FOR UPDATE""",
        params,
    )


async def remove_actor(q: Queries, notification_id: uuid.UUID, actor: uuid.UUID) -> Row | None:
    """Take `actor` out of a notification; returns the new actor list and count."""
    return await q.fetchrow(
        f"""UPDATE notifications n SET
              actor_ids = array_remove(n.actor_ids, %(a)s),
              actor_count = greatest(n.actor_count - 1, 0),
              event_count = greatest(n.event_count - 1, 1),
              actor_id = (array_remove(n.actor_ids, %(a)s))[1]
            WHERE n.id = %(id)s
            RETURNING n.id, n.type, n.actor_ids, n.actor_count, n.event_count, n.data,
                      n.is_read, n.visible, {ACTOR_PROFILES.format(alias="n")} AS actors""",
        {"id": notification_id, "a": actor},
    )


async def set_content(q: Queries, notification_id: uuid.UUID, content: str) -> None:
    await q.execute(
        "UPDATE notifications SET content = %s WHERE id = %s", (content, notification_id)
    )


async def delete_rows(q: Queries, ids: list[uuid.UUID]) -> list[Row]:
    return await q.fetch(
        """DELETE FROM notifications WHERE id = ANY(%s)
           RETURNING id, recipient_id, is_read, visible""",
        (ids,),
    )


async def rows_for_entity(q: Queries, entity_type: str, entity_id: uuid.UUID) -> list[Row]:
    return await q.fetch(
        """SELECT id, recipient_id FROM notifications
           WHERE entity_type = %s AND entity_id = %s ORDER BY id""",
        (entity_type, entity_id),
    )


# -- preferences ---------------------------------------------------------------------------


async def get_settings(q: Queries, user: uuid.UUID) -> dict[str, Any] | None:
    return await q.fetchval("SELECT prefs FROM notification_settings WHERE user_id = %s", (user,))


async def lock_settings(q: Queries, user: uuid.UUID) -> dict[str, Any] | None:
    await q.execute(
        """INSERT INTO notification_settings (user_id) VALUES (%s)
           ON CONFLICT (user_id) DO NOTHING""",
        (user,),
    )
    return await q.fetchval(
        "SELECT prefs FROM notification_settings WHERE user_id = %s FOR UPDATE", (user,)
    )


async def save_settings(q: Queries, user: uuid.UUID, prefs: dict[str, Any]) -> None:
    await q.execute(
        """UPDATE notification_settings SET prefs = %s, updated_at = now() WHERE user_id = %s""",
        (jsonb(prefs), user),
    )


# -- digests, cleanup, reconciliation ------------------------------------------------------


async def digest_candidates(
    q: Queries,
    *,
    since: datetime,
    after: tuple[datetime, uuid.UUID] | None,
    weekly_only: bool,
    limit: int,
) -> list[Row]:
    """Users notified since `since` (keyset by (last_notified_at, user_id)); for the weekly
    digest only those who chose a weekly digest for some category."""
    where = ["c.last_notified_at >= %(since)s"]
    params: dict[str, Any] = {"since": since, "limit": limit}
    if after is not None:
        where.append("(c.last_notified_at, c.user_id) > (%(at)s, %(aid)s)")
        params["at"], params["aid"] = after
    if weekly_only:
        where.append(
            """EXISTS (SELECT 1 FROM notification_settings s WHERE s.user_id = c.user_id
                       AND jsonb_path_exists(s.prefs, '$.categories.*.email ? (@ == "weekly")'))"""
        )
    return await q.fetch(
        f"""SELECT c.user_id, c.last_notified_at FROM notification_counters c
            WHERE {" AND ".join(where)}
            ORDER BY c.last_notified_at, c.user_id LIMIT %(limit)s""",
        params,
    )


async def digest_state(q: Queries, user: uuid.UUID) -> Row | None:
    return await q.fetchrow(
        """SELECT c.unread, c.daily_digest_until, c.weekly_digest_until,
                  u.email, u.username, u.is_active, s.prefs
           FROM users u
           LEFT JOIN notification_counters c ON c.user_id = u.id
           LEFT JOIN notification_settings s ON s.user_id = u.id
           WHERE u.id = %s""",
        (user,),
    )


async def digest_rows(
    q: Queries,
    user: uuid.UUID,
    *,
    since: datetime,
    until: datetime,
    types: list[str],
    limit: int,
) -> tuple[list[Row], int]:
    """Unread notifications of `types` whose latest activity falls in [since, until)."""
    params = {"u": user, "since": since, "until": until, "types": types, "limit": limit}
    where = """recipient_id = %(u)s AND NOT is_read AND type = ANY(%(types)s)
               AND latest_at >= %(since)s AND latest_at < %(until)s"""
    rows = await q.fetch(
        f"""SELECT id, type, content, latest_at FROM notifications
            WHERE {where} ORDER BY latest_at DESC, id DESC LIMIT %(limit)s""",
        params,
    )
    total = await q.fetchval(f"SELECT count(*) FROM notifications WHERE {where}", params)
    return rows, total


async def mark_digest_sent(q: Queries, user: uuid.UUID, period: str, until: datetime) -> None:
    column = {"daily": "daily_digest_until", "weekly": "weekly_digest_until"}[period]
    await q.execute(
        f"""INSERT INTO notification_counters AS nc (user_id, {column}) VALUES (%(u)s, %(t)s)
            ON CONFLICT (user_id) DO UPDATE
              SET {column} = greatest(coalesce(nc.{column}, %(t)s), %(t)s)""",
        {"u": user, "t": until},
    )


async def delete_older_than(q: Queries, cutoff_id: uuid.UUID, cutoff: datetime, limit: int) -> int:
    """Delete up to `limit` notifications whose id (UUIDv7, so creation time) and latest
    activity are older than the cutoff, moving the counters of the unread ones."""
    return await q.fetchval(
        """WITH d AS (
             DELETE FROM notifications WHERE id IN (
               SELECT id FROM notifications WHERE id < %(cid)s AND latest_at < %(cut)s
               ORDER BY id LIMIT %(limit)s)
             RETURNING recipient_id, is_read, visible
           ), dec AS (
             SELECT recipient_id, count(*) AS n FROM d
             WHERE NOT is_read AND visible GROUP BY recipient_id
           ), upd AS (
             UPDATE notification_counters c SET unread = greatest(c.unread - dec.n, 0)
             FROM dec WHERE c.user_id = dec.recipient_id
           )
           SELECT count(*) FROM d""",
        {"cid": cutoff_id, "cut": cutoff, "limit": limit},
    )


async def counter_page(q: Queries, after: uuid.UUID | None, limit: int) -> list[uuid.UUID]:
    rows = await q.fetch(
        """SELECT user_id FROM notification_counters
           WHERE %(a)s::uuid IS NULL OR user_id > %(a)s ORDER BY user_id LIMIT %(limit)s""",
        {"a": after, "limit": limit},
    )
    return [row["user_id"] for row in rows]


async def reconcile_counters(q: Queries, users: list[uuid.UUID]) -> int:
    """Recount the unread notifications of `users` (inside a transaction: the counter rows are
    locked first, so a notify that is committing concurrently is counted exactly once)."""
    await q.execute(
        "SELECT 1 FROM notification_counters WHERE user_id = ANY(%s) ORDER BY user_id FOR UPDATE",
        (users,),
    )
    return await q.execute(
        """UPDATE notification_counters c SET unread = x.n
           FROM (SELECT u AS user_id,
                        (SELECT count(*) FROM notifications n
                         WHERE n.recipient_id = u AND NOT n.is_read AND n.visible) AS n
                 FROM unnest(%s::uuid[]) AS u) x
           WHERE c.user_id = x.user_id AND c.unread <> x.n""",
        (users,),
    )
