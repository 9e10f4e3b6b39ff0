"""Editing a post and its history. Any author (the creator or an accepted co-author) edits;
a published post keeps every version it replaces (`GET /api/posts/:id/history`) and shows
"edited"; the other authors are told ("Collaborator edited your shared post"); subscribers of
`post:<id>` get `post.updated` (ids and counters only: they refetch what they may see).

An edit of a published post re-resolves the text: newly mentioned users and shops are
notified, hashtags are recounted (removed ones uncounted)."""

from __future__ import annotations

import uuid
from typing import Any

from server.domain import notifications
from server.domain.access import access_post, check_author
from server.domain.auth_tokens import Principal
from server.domain.context import Context
from server.domain.notification_catalog import NotificationType, preview
from server.domain.posts import composing, live
from server.domain.posts import media as post_media
from server.domain.posts.commands import EditPostIn
from server.domain.posts.publishing import notify_invited, notify_mentions, notify_shops
from server.domain.posts.views import render_posts
from server.errors import Forbidden
from server.pagination import decode_id_cursor, page
from server.store import post_media as media_store
from server.store.media import lock_many as media_rows
from server.store.posts import reads as store
from server.store.posts import writes


async def edit_post(
    ctx: Context, actor: Principal, post_id: uuid.UUID, command: EditPostIn
) -> dict[str, Any]:
    async with ctx.db.transaction() as tx:
        await access_post(ctx, tx, actor, post_id)
        post = await store.lock_post(tx, post_id)
        if post is None:  # deleted since the check above
            raise Forbidden("This post was deleted.")
        check_author(post, actor)
        now = ctx.clock.now()
        changes: dict[str, Any] = {}
        published = post["status"] == "published"
        text = post["content"]
        if command.content is not None:
            text = composing.check_text(command.content, post["post_type"])
        resolved = await composing.resolve_text(tx, post["author_id"], text)
        text_changed = text != post["content"]
        if text_changed:
            changes.update(content=text, entities=resolved.entities)
            if published:
                await writes.insert_version(tx, post, edited_by=actor.user_id, replaced_at=now)
                changes.update(edit_count=post["edit_count"] + 1, edited_at=now)
        if command.visibility is not None and command.visibility != post["visibility"]:
            changes["visibility"] = command.visibility
        if command.media_ids is not None:
            await _change_media(ctx, tx, actor, post, command.media_ids, changes)
        links = await composing.resolve_links_of(ctx, tx, actor, command)
        current = await store.links_of(tx, [post_id])
        before_shops = {link["entity_id"] for link in current if link["kind"] == "shop"}
        links = composing.with_shop_mentions(
            links,
            [
                (link["entity_id"], link["mention_type"])
                for link in current
                if link["kind"] == "shop"
            ],
            resolved,
        )
        await writes.replace_links(tx, post_id, **links.as_kwargs(), at=now)
        invited: list[uuid.UUID] = []
        if command.invite_collaborator_ids:
            check_author(post, actor, creator_only=True)
            existing = await store.collaborators_of(tx, [post_id])
            wanted = [
                uid
                for uid in await composing.check_collaborators(
                    tx,
                    post["author_id"],
                    command.invite_collaborator_ids,
                    limit=ctx.settings.posts.max_collaborators,
                    already=len(existing),
                )
            ]
            invited = await writes.invite_collaborators(tx, post_id, wanted, actor.user_id, now)
        changes["updated_at"] = now
        recount = published and "visibility" in changes  # hashtags count public posts only
        if recount:
            await writes.count_hashtags(tx, post_id, -1)
        post_after = await writes.update_post(tx, post_id, changes)
        if recount:
            await writes.count_hashtags(tx, post_id, +1)
        old_mentions = await store.mentioned_users(tx, post_id)
        await writes.set_mentions(tx, post_id, resolved.mentioned)
        if invited and post["status"] != "draft":
            await notify_invited(ctx, tx, post_after, actor.user_id, invited)
        if published:
            if text_changed:
                old_tags = set(await store.hashtag_ids(tx, post_id))
                new_tags = resolved.hashtags
                await writes.remove_hashtags(tx, post_id, sorted(old_tags - set(new_tags)))
                await writes.add_hashtags(
                    tx, post_id, [t for t in new_tags if t not in old_tags], post["published_at"]
                )
                await notify_mentions(
                    ctx, tx, post_after, [u for u in resolved.mentioned if u not in old_mentions]
                )
            new_shops = [s for s, _ in links.shops or [] if s not in before_shops]
            await notify_shops(ctx, tx, post_after, new_shops)
            await _tell_coauthors(ctx, tx, post_after, actor)
            await live.post_updated(ctx, tx, post_after, sorted(changes))
    return (await render_posts(ctx, actor.user_id, [post_after]))[0]


async def _tell_coauthors(ctx: Context, tx: Any, post: Any, editor: Principal) -> None:
    for author in post["author_ids"]:
        if author == editor.user_id:
            continue
        await notifications.notify(
            ctx,
            tx,
            recipient_id=author,
            type=NotificationType.COLLABORATOR_EDITED_POST,
            entity_type="post",
            entity_id=post["id"],
            actor_id=editor.user_id,
            data={"post_id": str(post["id"]), "post_preview": preview(post["content"])},
        )


async def post_history(
    ctx: Context, viewer: Principal, post_id: uuid.UUID, *, limit: int, cursor: str | None
) -> dict[str, Any]:
    """The versions a published post had before its edits, most recent first (whoever may see
    the post may see what it said)."""
    post = await access_post(ctx, ctx.db, viewer, post_id)
    rows = await store.versions(ctx.db, post["id"], decode_id_cursor(cursor), limit + 1)
    items, next_cursor = page([dict(r) for r in rows], limit, lambda r: str(r["id"]))
    return {
        "post_id": str(post["id"]),
        "edit_count": post["edit_count"],
        "current": {
            "content": post["content"],
            "entities": post["entities"],
            "since": post["edited_at"] or post["published_at"] or post["created_at"],
        },
        "items": [
            {
                "id": str(r["id"]),
                "content": r["content"],
                "entities": r["entities"],
                "edited_by": str(r["edited_by"]) if r["edited_by"] else None,
                "valid_from": r["valid_from"],
                "replaced_at": r["replaced_at"],
            }
            for r in items
        ],
        "next_cursor": next_cursor,
    }


async def _change_media(
    ctx: Context,
    tx: Any,
    actor: Principal,
    post: Any,
    media_ids: list[uuid.UUID],
    changes: dict[str, Any],
) -> None:
    """The post shows `media_ids` now: media it already showed stay (whoever uploaded them);
    new ones must be the editor's own and ready. The type follows (a poll post keeps none)."""
    current = await media_store.media_ids(tx, post["id"])
    added = [m for m in media_ids if m not in current]
    new_rows = {m["id"]: m for m in await post_media.check_media(tx, actor, added)}
    kept = {m["id"]: m for m in await media_rows(tx, [m for m in media_ids if m in current])}
    kinds = [(new_rows.get(m) or kept[m])["media_type"] for m in media_ids]
    has_poll = post["post_type"] == "poll"
    post_type = post_media.post_type_for(None, kinds, has_poll)
    composing.check_text(
        post["content"] if "content" not in changes else changes["content"], post_type
    )
    await post_media.attach(ctx, tx, post["id"], media_ids)
    if post_type != post["post_type"]:
        changes["post_type"] = post_type
