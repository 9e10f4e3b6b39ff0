"""Writes of posts, inside the caller's transaction: the row, its versions, mentions, hashtags
(with their counters), collaborators (with `author_ids`) and commerce links.

Counters and denormalised columns move in the same statement or transaction as the rows they
count, so a reader never sees one without the other.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from server.ids import new_id
from server.store.db import Queries, Row, jsonb
from server.store.posts.reads import POST_COLUMNS
from server.store.visibility import post_seen_by_everyone


async def insert_post(q: Queries, values: dict[str, Any]) -> Row:
    return await q.fetchrow_one(
        f"""INSERT INTO posts AS p (id, author_id, author_ids, content, entities, post_type,
                status, visibility, is_collaborative, publish_at, created_at, updated_at,
                published_at, original_post_id, is_repost, is_quote)
            VALUES (%(id)s, %(author_id)s, ARRAY[%(author_id)s]::uuid[], %(content)s,
                %(entities)s, %(post_type)s, %(status)s, %(visibility)s, %(is_collaborative)s,
                %(publish_at)s, %(now)s, %(now)s, %(published_at)s, %(original_post_id)s,
                %(is_repost)s, %(is_quote)s)
            RETURNING {POST_COLUMNS}""",
        {
            "original_post_id": None,
            "is_repost": False,
            "is_quote": False,
            **values,
            "entities": jsonb(values["entities"]),
        },
    )


async def update_post(q: Queries, post_id: uuid.UUID, changes: dict[str, Any]) -> Row:
    """Set `changes` (column -> value; `entities` as a list) on the post; returns the row."""
    sets = []
    params: dict[str, Any] = {"id": post_id}
    for column, value in changes.items():
        sets.append(f"{column} = %({column})s")
        params[column] = jsonb(value) if column == "entities" else value
    return await q.fetchrow_one(
        f"UPDATE posts p SET {', '.join(sets)} WHERE p.id = %(id)s RETURNING {POST_COLUMNS}",
        params,
    )


async def insert_version(
    q: Queries,
    post: Row,
    *,
    edited_by: uuid.UUID,
    replaced_at: datetime,
) -> None:
    """Keep the version `post` (the row before an edit) as history."""
    await q.execute(
        """INSERT INTO post_versions (id, post_id, content, entities, edited_by, valid_from,
                                      replaced_at)
           VALUES (%s, %s, %s, %s, %s, %s, %s)""",
        (
            new_id(),
            post["id"],
            post["content"],
            jsonb(post["entities"]),
            edited_by,
            post["edited_at"] or post["published_at"] or post["created_at"],
            replaced_at,
        ),
    )


async def set_mentions(q: Queries, post_id: uuid.UUID, user_ids: Sequence[uuid.UUID]) -> None:
    await q.execute(
        """WITH gone AS (DELETE FROM post_mentions
                         WHERE post_id = %(post)s AND NOT (user_id = ANY(%(users)s)))
           INSERT INTO post_mentions (post_id, user_id)
           SELECT %(post)s, u FROM unnest(%(users)s::uuid[]) u
           ON CONFLICT DO NOTHING""",
        {"post": post_id, "users": list(user_ids)},
    )


async def add_hashtags(
    q: Queries, post_id: uuid.UUID, tags: Sequence[str], published_at: datetime
) -> None:
    """Link a published post to `tags` (created as needed), counting it once per tag when
    everyone may see it (`post_seen_by_everyone`: a stranger must not learn from the count
    that a private account or a followers-only post uses the tag).

    Two statements: an UPDATE in the same statement as the upsert cannot see (or change
    again) the rows the upsert wrote, so counting there left every count at 0."""
    if not tags:
        return
    linked = await q.fetch(
        """WITH tag AS (
               INSERT INTO hashtags (id, tag, posts_count, created_at)
               SELECT t.id, t.tag, 0, %(at)s
               FROM unnest(%(ids)s::uuid[], %(tags)s::text[]) AS t (id, tag)
               ON CONFLICT (tag) DO UPDATE SET tag = EXCLUDED.tag
               RETURNING id)
           INSERT INTO post_hashtags (post_id, hashtag_id, published_at)
           SELECT %(post)s, id, %(at)s FROM tag
           ON CONFLICT DO NOTHING RETURNING hashtag_id""",
        {"post": post_id, "ids": [new_id() for _ in tags], "tags": list(tags), "at": published_at},
    )
    if linked:
        await q.execute(
            f"""UPDATE hashtags SET posts_count = posts_count + 1
                WHERE id = ANY(%(ids)s) AND EXISTS (
                    SELECT 1 FROM posts p WHERE p.id = %(post)s AND {post_seen_by_everyone()})""",
            {"ids": [row["hashtag_id"] for row in linked], "post": post_id},
        )


async def remove_hashtags(q: Queries, post_id: uuid.UUID, tags: Sequence[str] | None) -> None:
    """Unlink `tags` (None: every tag) from the post, uncounting it if it was counted (the
    post's audience as it is now, deletion aside: call before changing the audience).

    Known approximation: an account turning private or public does not recount its tags, so
    a count can keep a post of a now private account (or miss one of a now public account)
    until it is deleted; what a viewer finds is decided by `hashtag_visible`, never by it."""
    await q.execute(
        f"""WITH gone AS (
               DELETE FROM post_hashtags ph USING hashtags h
               WHERE ph.post_id = %(post)s AND h.id = ph.hashtag_id
                 AND (%(tags)s::text[] IS NULL OR h.tag = ANY(%(tags)s))
               RETURNING ph.hashtag_id)
           UPDATE hashtags h SET posts_count = greatest(h.posts_count - 1, 0)
           FROM gone WHERE h.id = gone.hashtag_id AND EXISTS (
               SELECT 1 FROM posts p WHERE p.id = %(post)s AND {post_seen_by_everyone()})""",
        {"post": post_id, "tags": list(tags) if tags is not None else None},
    )


async def count_hashtags(q: Queries, post_id: uuid.UUID, delta: int) -> None:
    """Add `delta` to the counts of the post's tags if everyone may see it as it is now: -1
    before its audience changes, +1 after, so the counts follow an edited audience."""
    await q.execute(
        f"""UPDATE hashtags h SET posts_count = greatest(h.posts_count + %(d)s, 0)
            FROM post_hashtags ph
            WHERE ph.post_id = %(post)s AND h.id = ph.hashtag_id AND EXISTS (
                SELECT 1 FROM posts p WHERE p.id = %(post)s AND {post_seen_by_everyone()})""",
        {"post": post_id, "d": delta},
    )


# Collaborators ---------------------------------------------------------------------------


async def invite_collaborators(
    q: Queries,
    post_id: uuid.UUID,
    user_ids: Sequence[uuid.UUID],
    invited_by: uuid.UUID,
    at: datetime,
) -> list[uuid.UUID]:
    """Invite users not already on the post; returns those newly invited."""
    rows = await q.fetch(
        """INSERT INTO post_collaborators (post_id, user_id, status, invited_by, created_at)
           SELECT %(post)s, u, 'pending', %(by)s, %(at)s FROM unnest(%(users)s::uuid[]) u
           ON CONFLICT DO NOTHING RETURNING user_id""",
        {"post": post_id, "users": list(user_ids), "by": invited_by, "at": at},
    )
    return [row["user_id"] for row in rows]


async def collaborator(q: Queries, post_id: uuid.UUID, user_id: uuid.UUID) -> Row | None:
    return await q.fetchrow(
        """SELECT post_id, user_id, role, status, invited_by, created_at, responded_at
           FROM post_collaborators WHERE post_id = %s AND user_id = %s FOR UPDATE""",
        (post_id, user_id),
    )


async def accept_collaboration(
    q: Queries, post_id: uuid.UUID, user_id: uuid.UUID, at: datetime
) -> None:
    """The invitee becomes a co-author: their row is accepted and they join `author_ids`."""
    await q.execute(
        """WITH accepted AS (
               UPDATE post_collaborators SET status = 'accepted', responded_at = %(at)s
               WHERE post_id = %(post)s AND user_id = %(user)s AND status = 'pending'
               RETURNING user_id)
           UPDATE posts SET author_ids = author_ids || accepted.user_id, is_collaborative = true
           FROM accepted WHERE posts.id = %(post)s""",
        {"post": post_id, "user": user_id, "at": at},
    )


async def drop_collaborator(q: Queries, post_id: uuid.UUID, user_id: uuid.UUID) -> None:
    """Remove a collaborator (declined, left or removed): the row and their byline."""
    await q.execute(
        """WITH gone AS (
               DELETE FROM post_collaborators WHERE post_id = %(post)s AND user_id = %(user)s
               RETURNING user_id)
           UPDATE posts
           SET author_ids = array_remove(author_ids, gone.user_id),
               is_collaborative = cardinality(array_remove(author_ids, gone.user_id)) > 1
           FROM gone WHERE posts.id = %(post)s""",
        {"post": post_id, "user": user_id},
    )


async def pending_count(q: Queries, post_id: uuid.UUID) -> int:
    return await q.fetchval(
        "SELECT count(*) FROM post_collaborators WHERE post_id = %s AND status = 'pending'",
        (post_id,),
    )


# Commerce links --------------------------------------------------------------------------

_LINK_TABLES = {
    "product": ("post_products", "product_id"),
    "event": ("post_events", "event_id"),
    "group": ("post_groups", "group_id"),
}


async def replace_links(
    q: Queries,
    post_id: uuid.UUID,
    *,
    products: Sequence[uuid.UUID] | None,
    shops: Sequence[tuple[uuid.UUID, str]] | None,
    events: Sequence[uuid.UUID] | None,
    groups: Sequence[uuid.UUID] | None,
    plans: Sequence[tuple[uuid.UUID, uuid.UUID, bool]] | None,
    at: datetime,
) -> None:
    """Replace each kind of link given (None: leave that kind as it is), in display order.
    `shops` are (shop_id, mention_type); `plans` are (plan_id, product_id, is_featured)."""
    for kind, ids in (("product", products), ("event", events), ("group", groups)):
        if ids is None:
            continue
        table, column = _LINK_TABLES[kind]
        await q.execute(f"DELETE FROM {table} WHERE post_id = %s", (post_id,))
        if ids:
            await q.execute(
                f"""INSERT INTO {table} (post_id, {column}, display_order, created_at)
                    SELECT %(post)s, e.id, e.ord - 1, %(at)s
                    FROM unnest(%(ids)s::uuid[]) WITH ORDINALITY AS e (id, ord)""",
                {"post": post_id, "ids": list(ids), "at": at},
            )
    if shops is not None:
        await q.execute("DELETE FROM post_shops WHERE post_id = %s", (post_id,))
        if shops:
            await q.execute(
                """INSERT INTO post_shops (post_id, shop_id, mention_type, display_order,
                                           created_at)
                   SELECT %(post)s, s.id, s.kind, s.ord - 1, %(at)s
                   FROM unnest(%(ids)s::uuid[], %(kinds)s::text[]) WITH ORDINALITY
                        AS s (id, kind, ord)""",
                {
                    "post": post_id,
                    "ids": [shop_id for shop_id, _ in shops],
                    "kinds": [kind for _, kind in shops],
                    "at": at,
                },
            )
    if plans is not None:
        await q.execute("DELETE FROM post_plans WHERE post_id = %s", (post_id,))
        if plans:
            await q.execute(
                """INSERT INTO post_plans (post_id, plan_id, product_id, display_order,
                                           is_featured, created_at)
                   SELECT %(post)s, x.plan, x.product, x.ord - 1, x.featured, %(at)s
                   FROM unnest(%(plans)s::uuid[], %(products)s::uuid[], %(featured)s::bool[])
                        WITH ORDINALITY AS x (plan, product, featured, ord)""",
                {
                    "post": post_id,
                    "plans": [plan for plan, _, _ in plans],
                    "products": [product for _, product, _ in plans],
                    "featured": [featured for _, _, featured in plans],
                    "at": at,
                },
            )


# Lifecycle -------------------------------------------------------------------------------


async def bump_posts_count(q: Queries, user_ids: Sequence[uuid.UUID], delta: int) -> None:
    await q.execute(
        """UPDATE users SET posts_count = greatest(posts_count + %s, 0)
           WHERE id = ANY(%s)""",
        (delta, list(user_ids)),
    )


async def purge_deleted(q: Queries, deleted_before: datetime, limit: int = 500) -> int:
    """Forget posts soft-deleted before `deleted_before` (their links, versions and the rest
    go with them by cascade), a batch at a time."""
    return await q.execute(
        """DELETE FROM posts WHERE id IN (
               SELECT id FROM posts WHERE deleted_at < %s ORDER BY deleted_at LIMIT %s)""",
        (deleted_before, limit),
    )


async def bump_reposts(q: Queries, post_id: uuid.UUID, delta: int) -> int:
    return await q.fetchval(
        """UPDATE posts SET reposts_count = greatest(reposts_count + %s, 0) WHERE id = %s
           RETURNING reposts_count""",
        (delta, post_id),
    )
