"""The one SQL fragment library of visibility rules: who may see whose rows.

Every store module that filters by blocks builds its SQL from these functions instead of
restating the rule. The viewer is a required argument: a fragment names the query parameter
that carries the viewer, and a NULL there hides everything (fail closed) rather than filtering
nothing. A read that legitimately has no viewer (the server rendering a card for a topic, an
ingest answer, the expiry announcement) says so with `SYSTEM`; `None` is refused.

    where, params = visible_to(viewer, "p.owner_id")   # viewer: a user id or SYSTEM
    sql = f"SELECT ... FROM products p WHERE p.id = %(id)s AND {where}"

Arguments named `*_column` / `a` / `b` are SQL expressions the caller controls (a column such
as `p.owner_id` or a placeholder such as `%(o)s`), never user input.
"""

from __future__ import annotations

import re
import uuid
from typing import Any, Final

_PARAM_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class MissingViewer(TypeError):
    """A visibility rule was asked for without saying who is looking."""


class _System:
    """The server reading on its own behalf (no user is looking): no block rule applies."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "SYSTEM"


SYSTEM: Final = _System()
Viewer = uuid.UUID | _System


def require_viewer(viewer: object) -> uuid.UUID:
    """The viewer's user id; `MissingViewer` for None (or anything that is not a user id)."""
    if isinstance(viewer, uuid.UUID):
        return viewer
    if viewer is None:
        raise MissingViewer("a viewer is required (use visibility.SYSTEM for a server read)")
    raise MissingViewer(f"the viewer must be a user id or SYSTEM, not {viewer!r}")


def _placeholder(viewer_param: object) -> str:
    if not isinstance(viewer_param, str) or not _PARAM_RE.fullmatch(viewer_param):
        raise MissingViewer(f"the viewer parameter must be named, not {viewer_param!r}")
    return f"%({viewer_param})s::uuid"


def _expression(sql: object) -> str:
    if not isinstance(sql, str) or not sql.strip():
        raise MissingViewer(f"a user expression is required, not {sql!r}")
    return sql


# Fragments --------------------------------------------------------------------------------


def blocks(blocker: str, blocked: str) -> str:
    """SQL boolean: user `blocker` has blocked user `blocked` (one way)."""
    blocker, blocked = _expression(blocker), _expression(blocked)
    return f"""EXISTS (SELECT 1 FROM blocks blk
                WHERE blk.blocker_id = {blocker} AND blk.blocked_id = {blocked})"""


def blocked_either_way(a: str, b: str) -> str:
    """SQL boolean: users `a` and `b` have blocked each other, either way."""
    a, b = _expression(a), _expression(b)
    return f"""EXISTS (SELECT 1 FROM blocks blk
                WHERE (blk.blocker_id = {a} AND blk.blocked_id = {b})
                   OR (blk.blocker_id = {b} AND blk.blocked_id = {a}))"""


def blocked_either_way_among(user: str, others: str) -> str:
    """SQL query of one column, `other`: the users in the array `others` who and `user` have
    blocked each other, either way. Reads only `user`'s blocks (both indexes), whatever the
    array's size."""
    user, others = _expression(user), _expression(others)
    return f"""SELECT blk.blocked_id AS other FROM blocks blk
               WHERE blk.blocker_id = {user} AND blk.blocked_id = ANY({others})
               UNION
               SELECT blk.blocker_id FROM blocks blk
               WHERE blk.blocked_id = {user} AND blk.blocker_id = ANY({others})"""


def not_blocked(viewer_param: str, other_column: str) -> str:
    """SQL boolean: the viewer (query parameter `viewer_param`) and the user in `other_column`
    have not blocked each other, either way. A NULL viewer sees nothing."""
    viewer = _placeholder(viewer_param)
    return f"({viewer} IS NOT NULL AND NOT {blocked_either_way(viewer, other_column)})"


def not_blocked_by(other_column: str, viewer_param: str) -> str:
    """SQL boolean: the user in `other_column` has not blocked the viewer (query parameter
    `viewer_param`); for the viewer, such a user does not exist. A NULL viewer sees nothing."""
    viewer = _placeholder(viewer_param)
    return f"({viewer} IS NOT NULL AND NOT {blocks(other_column, viewer)})"


# What is shown of a user who blocked the viewer, where the block cannot remove them: the
# viewer's own conversations with them and search over those messages. Their current name,
# avatar and badge would keep updating the viewer after the block; a neutral identity does not
# (Instagram shows "Instagram User"). The username stays: it cannot change, the viewer knew it.
NEUTRAL_DISPLAY_NAME: Final = "Nexgate User"


def user_brief_seen_by(viewer: str, user_alias: str = "u") -> str:
    """SQL jsonb: user row `user_alias` (id, username, display_name, profile_picture_url,
    is_verified, is_active) as `viewer` (an SQL expression) may see it: neutral when that user
    has blocked the viewer, as it is otherwise (a blocker still sees whom they blocked)."""
    viewer, u = _expression(viewer), _expression(user_alias)
    hidden = blocks(f"{u}.id", viewer)
    return f"""CASE WHEN {hidden}
                THEN jsonb_build_object('id', {u}.id, 'username', {u}.username,
                    'display_name', '{NEUTRAL_DISPLAY_NAME}', 'profile_picture_url', NULL,
                    'is_verified', false, 'is_active', {u}.is_active)
                ELSE jsonb_build_object('id', {u}.id, 'username', {u}.username,
                    'display_name', {u}.display_name,
                    'profile_picture_url', {u}.profile_picture_url,
                    'is_verified', {u}.is_verified, 'is_active', {u}.is_active)
                END"""


# Fragment and its parameter together ------------------------------------------------------


def visible_to(
    viewer: Viewer, owner_column: str, *, param: str = "viewer"
) -> tuple[str, dict[str, Any]]:
    """(SQL boolean, parameters): rows whose owner (`owner_column`) and the viewer have not
    blocked each other. `SYSTEM` (a server read) sees every row; None is refused."""
    if viewer is SYSTEM:
        _expression(owner_column)
        return "TRUE", {}
    return not_blocked(param, owner_column), {param: require_viewer(viewer)}


def shown_to(
    viewer: uuid.UUID, user_column: str, *, param: str = "viewer"
) -> tuple[str, dict[str, Any]]:
    """(SQL boolean, parameters): users (`user_column`) who have not blocked the viewer."""
    return not_blocked_by(user_column, param), {param: require_viewer(viewer)}


# Posts ------------------------------------------------------------------------------------


def post_visible(viewer_param: str, post: str = "p") -> str:
    """SQL boolean: the viewer (query parameter `viewer_param`) may see post `post` (an alias
    of `posts`). Deleted posts: nobody. Its authors (creator and accepted co-authors, in
    `author_ids`): always, drafts included; an invited co-author: once it is no longer a
    draft. Anyone else: published, no block between them and any author, and for some author
    the post's audience admits them: `public` from a public account, or `public` / `followers`
    when they are that author's accepted follower. `private` posts: their authors only. A NULL
    viewer sees nothing."""
    viewer = _placeholder(viewer_param)
    p = _expression(post)
    return f"""({viewer} IS NOT NULL AND {p}.deleted_at IS NULL AND (
        {viewer} = ANY({p}.author_ids)
        OR ({p}.status <> 'draft' AND EXISTS (
            SELECT 1 FROM post_collaborators pcv
            WHERE pcv.post_id = {p}.id AND pcv.user_id = {viewer}))
        OR ({p}.status = 'published' AND {p}.visibility <> 'private'
            AND NOT EXISTS (
                SELECT 1 FROM blocks blk
                WHERE (blk.blocker_id = {viewer} AND blk.blocked_id = ANY({p}.author_ids))
                   OR (blk.blocked_id = {viewer} AND blk.blocker_id = ANY({p}.author_ids)))
            AND EXISTS (
                SELECT 1 FROM users pau
                WHERE pau.id = ANY({p}.author_ids) AND pau.is_active AND (
                    ({p}.visibility = 'public' AND NOT pau.is_private)
                    OR EXISTS (SELECT 1 FROM follows pf
                               WHERE pf.follower_id = {viewer} AND pf.following_id = pau.id
                                 AND pf.status = 'accepted'))))))"""


def post_visible_to(
    viewer: uuid.UUID, post: str = "p", *, param: str = "viewer"
) -> tuple[str, dict[str, Any]]:
    """(SQL boolean, parameters): `post_visible` with the viewer bound."""
    return post_visible(param, post), {param: require_viewer(viewer)}


# Search, lists and discovery (issue 14, part S) -------------------------------------------


def post_not_muted_or_hidden(viewer_param: str, post: str = "p") -> str:
    """SQL boolean: the viewer (query parameter `viewer_param`) has muted no author of post
    `post` and has not hidden it ("not interested"). Both read the viewer's own rows by their
    primary / leading index (mutes (muter_id, muted_id), post_hides (user_id, post_id)). A NULL
    viewer sees nothing."""
    viewer = _placeholder(viewer_param)
    p = _expression(post)
    return f"""({viewer} IS NOT NULL
        AND NOT EXISTS (SELECT 1 FROM mutes mu
                        WHERE mu.muter_id = {viewer} AND mu.muted_id = ANY({p}.author_ids))
        AND NOT EXISTS (SELECT 1 FROM post_hides ph
                        WHERE ph.user_id = {viewer} AND ph.post_id = {p}.id))"""


def user_listed_for(viewer_param: str, user: str = "u") -> str:
    """SQL boolean: user row `user` may be shown to the viewer in search and suggestions:
    active, and no block between them either way. A NULL viewer sees nothing."""
    u = _expression(user)
    return f"({u}.is_active AND {not_blocked(viewer_param, f'{u}.id')})"


# Hashtags (review finding 1) --------------------------------------------------------------


def post_seen_by_everyone(post: str = "p") -> str:
    """SQL boolean: post `post` is one any signed-in stranger may see, deletion aside: published,
    audience `public`, and some author a public, active account (`post_visible`'s rule for a
    viewer who follows nobody). `hashtags.posts_count` counts only such posts, as Instagram's
    hashtag pages do, so the count tells nobody about private accounts or narrower audiences."""
    p = _expression(post)
    return f"""({p}.status = 'published' AND {p}.visibility = 'public' AND EXISTS (
        SELECT 1 FROM users pub WHERE pub.id = ANY({p}.author_ids)
                                  AND pub.is_active AND NOT pub.is_private))"""


def hashtag_visible(viewer_param: str, tag: str = "h") -> str:
    """SQL boolean: some post with hashtag row `tag` is one the viewer (query parameter
    `viewer_param`) may see (`post_visible`); otherwise the tag does not exist for them. Cheap
    for popular tags (post_hashtags_feed_idx, the newest post is usually public); a tag used
    only where the viewer may not look costs a scan of its posts."""
    h = _expression(tag)
    return f"""EXISTS (SELECT 1 FROM post_hashtags hvp JOIN posts hvpp ON hvpp.id = hvp.post_id
                WHERE hvp.hashtag_id = {h}.id AND {post_visible(viewer_param, "hvpp")})"""
