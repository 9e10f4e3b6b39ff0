"""The notification catalogue: every type with its category, template and action target, the
rendering of batched actor lists, and the preference model (per category x channel).

Pure code (no I/O), so it is unit-tested directly.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

BATCH_WINDOW_S = 300  # same type + same entity within 5 minutes -> one notification
MAX_ACTORS = 100  # actors kept on a batched notification (the count keeps counting)
PREVIEW_CHARS = 100


class NotificationType(enum.StrEnum):
    # Social
    FOLLOW = "follow"
    FOLLOW_REQUEST = "follow_request"
    FOLLOW_ACCEPTED = "follow_accepted"
    LIKE_POST = "like_post"
    LIKE_COMMENT = "like_comment"
    COMMENT_POST = "comment_post"
    REPLY_COMMENT = "reply_comment"
    MENTION_POST = "mention_post"
    MENTION_COMMENT = "mention_comment"
    TAG_POST = "tag_post"
    TAG_IMAGE = "tag_image"
    REPOST = "repost"
    QUOTE_POST = "quote_post"
    COLLABORATION_INVITE = "collaboration_invite"
    COLLABORATION_ACCEPTED = "collaboration_accepted"
    COLLABORATION_DECLINED = "collaboration_declined"
    COLLABORATOR_EDITED_POST = "collaborator_edited_post"
    # Messaging
    NEW_MESSAGE = "new_message"
    PRODUCT_MESSAGE = "product_message"
    MESSAGE_REACTION = "message_reaction"
    # Commerce
    PRODUCT_POST_LIKE = "product_post_like"
    PRODUCT_POST_COMMENT = "product_post_comment"
    PRODUCT_POST_SHARE = "product_post_share"
    SHOP_TAGGED = "shop_tagged"
    GROUP_JOINED = "group_joined"
    GROUP_FULL = "group_full"


class Category(enum.StrEnum):
    FOLLOWS = "follows"
    LIKES = "likes"
    COMMENTS = "comments"
    MENTIONS = "mentions"
    TAGS = "tags"
    REPOSTS = "reposts"
    COLLABORATIONS = "collaborations"
    DIRECT_MESSAGES = "direct_messages"
    MESSAGE_REACTIONS = "message_reactions"
    PRODUCT_INTERACTIONS = "product_interactions"
    SHOP_TAGS = "shop_tags"


@dataclass(frozen=True)
class TypeInfo:
    category: Category
    # "{actors}" is the rendered actor list; other fields come from the notification's data.
    template: str
    # Used when a data field the template needs is missing.
    bare: str
    # What the client opens: an action name; the target is the entity unless said otherwise.
    action: str
    # Used when the notification batches several events of one actor (e.g. messages).
    many_events: str | None = None
    # "Important only" keeps these (and anything from someone the recipient follows).
    important: bool = False
    # Always shown in-app, whatever the in-app preference (the recipient must act on them).
    critical: bool = False
    # Not subject to the per-actor flood cap (messaging has its own rate limits).
    flood_exempt: bool = False


T = NotificationType
C = Category

CATALOG: dict[NotificationType, TypeInfo] = {
    T.FOLLOW: TypeInfo(
        C.FOLLOWS,
        "{actors} started following you",
        "{actors} started following you",
        "view_profile",
    ),
    T.FOLLOW_REQUEST: TypeInfo(
        C.FOLLOWS,
        "{actors} requested to follow you",
        "{actors} requested to follow you",
        "view_follow_requests",
        important=True,
        critical=True,
    ),
    T.FOLLOW_ACCEPTED: TypeInfo(
        C.FOLLOWS,
        "{actors} accepted your follow request",
        "{actors} accepted your follow request",
        "view_profile",
        important=True,
    ),
    T.LIKE_POST: TypeInfo(
        C.LIKES, "{actors} liked your post", "{actors} liked your post", "view_post"
    ),
    T.LIKE_COMMENT: TypeInfo(
        C.LIKES,
        "{actors} liked your comment: '{comment_preview}'",
        "{actors} liked your comment",
        "view_comment",
    ),
    T.COMMENT_POST: TypeInfo(
        C.COMMENTS,
        "{actors} commented on your post: '{comment_preview}'",
        "{actors} commented on your post",
        "view_comment",
        important=True,
    ),
    T.REPLY_COMMENT: TypeInfo(
        C.COMMENTS,
        "{actors} replied to your comment: '{reply_preview}'",
        "{actors} replied to your comment",
        "view_comment_thread",
        important=True,
    ),
    T.MENTION_POST: TypeInfo(
        C.MENTIONS,
        "{actors} mentioned you in a post",
        "{actors} mentioned you in a post",
        "view_post",
        important=True,
    ),
    T.MENTION_COMMENT: TypeInfo(
        C.MENTIONS,
        "{actors} mentioned you in a comment",
        "{actors} mentioned you in a comment",
        "view_comment",
        important=True,
    ),
    T.TAG_POST: TypeInfo(
        C.TAGS,
        "{actors} tagged you in a post",
        "{actors} tagged you in a post",
        "view_post",
        important=True,
    ),
    T.TAG_IMAGE: TypeInfo(
        C.TAGS,
        "{actors} tagged you in an image",
        "{actors} tagged you in an image",
        "view_image",
        important=True,
    ),
    T.REPOST: TypeInfo(
        C.REPOSTS, "{actors} reposted your post", "{actors} reposted your post", "view_repost"
    ),
    T.QUOTE_POST: TypeInfo(
        C.REPOSTS,
        "{actors} quoted your post: '{quote_preview}'",
        "{actors} quoted your post",
        "view_quote_post",
        important=True,
    ),
    T.COLLABORATION_INVITE: TypeInfo(
        C.COLLABORATIONS,
        "{actors} invited you to collaborate on a post",
        "{actors} invited you to collaborate on a post",
        "view_collaboration_invite",
        important=True,
        critical=True,
    ),
    T.COLLABORATION_ACCEPTED: TypeInfo(
        C.COLLABORATIONS,
        "{actors} accepted your collaboration invite",
        "{actors} accepted your collaboration invite",
        "view_post",
        important=True,
    ),
    T.COLLABORATION_DECLINED: TypeInfo(
        C.COLLABORATIONS,
        "{actors} declined your collaboration invite",
        "{actors} declined your collaboration invite",
        "dismiss",
        important=True,
    ),
    T.COLLABORATOR_EDITED_POST: TypeInfo(
        C.COLLABORATIONS,
        "{actors} edited your collaborative post",
        "{actors} edited your collaborative post",
        "view_post_changes",
        important=True,
    ),
    T.NEW_MESSAGE: TypeInfo(
        C.DIRECT_MESSAGES,
        "New message from {actors}",
        "New message from {actors}",
        "view_conversation",
        many_events="{event_count} new messages from {actors}",
        important=True,
        flood_exempt=True,
    ),
    T.PRODUCT_MESSAGE: TypeInfo(
        C.DIRECT_MESSAGES,
        "{actors} messaged you about {product_name}",
        "{actors} messaged you about a product",
        "view_conversation",
        many_events="{event_count} new messages from {actors} about {product_name}",
        important=True,
        flood_exempt=True,
    ),
    T.MESSAGE_REACTION: TypeInfo(
        C.MESSAGE_REACTIONS,
        "{actors} reacted {emoji} to your message",
        "{actors} reacted to your message",
        "view_conversation",
    ),
    T.PRODUCT_POST_LIKE: TypeInfo(
        C.PRODUCT_INTERACTIONS,
        "{actors} liked a post featuring your product '{product_name}'",
        "{actors} liked a post featuring your product",
        "view_post",
    ),
    T.PRODUCT_POST_COMMENT: TypeInfo(
        C.PRODUCT_INTERACTIONS,
        "{actors} commented on a post featuring your product",
        "{actors} commented on a post featuring your product",
        "view_comment",
    ),
    T.PRODUCT_POST_SHARE: TypeInfo(
        C.PRODUCT_INTERACTIONS,
        "{actors} shared a post featuring your product '{product_name}'",
        "{actors} shared a post featuring your product",
        "view_post",
    ),
    T.SHOP_TAGGED: TypeInfo(
        C.SHOP_TAGS,
        "{actors} tagged your shop in a post",
        "{actors} tagged your shop in a post",
        "view_post",
        important=True,
    ),
    T.GROUP_JOINED: TypeInfo(
        C.PRODUCT_INTERACTIONS,
        "{actors} joined your buy-together group",
        "{actors} joined your buy-together group",
        "view_group",
    ),
    T.GROUP_FULL: TypeInfo(
        C.PRODUCT_INTERACTIONS,
        "Your buy-together group is full! 🎉",
        "Your buy-together group is full! 🎉",
        "view_group",
        important=True,
    ),
}

CRITICAL_TYPES = sorted(t.value for t, info in CATALOG.items() if info.critical)


def info(type: NotificationType | str) -> TypeInfo:
    return CATALOG[NotificationType(type)]


def types_in(categories: set[Category] | set[str]) -> list[str]:
    wanted = {Category(c) for c in categories}
    return sorted(t.value for t, i in CATALOG.items() if i.category in wanted)


# -- rendering ---------------------------------------------------------------------------


def preview(text: str | None, limit: int = PREVIEW_CHARS) -> str:
    """A one-line excerpt for templates ('...commented on your post: "<preview>"')."""
    flat = " ".join((text or "").split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def actors_phrase(usernames: list[str], actor_count: int) -> str:
    """'@ana', '@ana and @ben', '@ana, @ben and @cy', '@ana, @ben, @cy and 10 others'."""
    names = [f"@{n}" for n in usernames[:3]]
    count = max(actor_count, len(names))
    if not names:
        if count == 0:
            return "Someone"
        return "Someone" if count == 1 else f"{count} people"
    if count > len(names):
        others = count - len(names)
        return f"{', '.join(names)} and {others} other{'s' if others != 1 else ''}"
    if len(names) == 1:
        return names[0]
    return f"{', '.join(names[:-1])} and {names[-1]}"


class _Strict(dict):
    def __missing__(self, key: str) -> Any:
        raise KeyError(key)


def render(
    type: NotificationType | str,
    usernames: list[str],
    actor_count: int,
    event_count: int,
    data: dict[str, Any] | None,
) -> str:
    """The stored text of a notification, e.g. '@ana, @ben, @cy and 10 others liked your post'."""
    spec = info(type)
    values = _Strict(
        {k: v for k, v in (data or {}).items() if v is not None and not isinstance(v, dict)}
    )
    values["actors"] = actors_phrase(usernames, actor_count)
    values["event_count"] = event_count
    template = spec.many_events if (event_count > 1 and spec.many_events) else spec.template
    for candidate in (template, spec.bare):
        try:
            return candidate.format_map(values)
        except (KeyError, IndexError, ValueError):
            continue
    return spec.bare.replace("{actors}", values["actors"])


def action(
    type: NotificationType | str,
    entity_type: str,
    entity_id: uuid.UUID | str,
    actor_ids: list[Any],
    actor_count: int,
) -> dict[str, Any]:
    """Where tapping the notification leads: {"kind", "target_type", "target_id"}."""
    spec = info(type)
    kind, target_type, target_id = spec.action, entity_type, entity_id
    if spec.action == "view_profile":
        if actor_count > 1 and NotificationType(type) is NotificationType.FOLLOW:
            kind = "view_followers"
        elif actor_ids:
            target_type, target_id = "user", actor_ids[0]
    return {"kind": kind, "target_type": target_type, "target_id": str(target_id)}


# -- preferences ---------------------------------------------------------------------------

EmailMode = Literal["off", "on", "daily", "weekly"]
Frequency = Literal["all", "important", "none"]


class CategoryPrefs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    push: bool = True
    in_app: bool = True
    email: EmailMode = "daily"
    frequency: Frequency = "all"


class CategoryPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    push: bool | None = None
    in_app: bool | None = None
    email: EmailMode | None = None
    frequency: Frequency | None = None


class SettingsPatch(BaseModel):
    """A partial change: only the given fields move."""

    model_config = ConfigDict(extra="forbid")

    push_enabled: bool | None = None
    email_enabled: bool | None = None
    categories: dict[Category, CategoryPatch] | None = None


class NotificationSettings(BaseModel):
    # Master switches over every category (e.g. "pause all push").
    push_enabled: bool = True
    email_enabled: bool = True
    categories: dict[Category, CategoryPrefs]
    # Types shown in-app whatever the in-app preference says.
    critical_types: list[str] = CRITICAL_TYPES


def effective_settings(stored: dict[str, Any] | None) -> NotificationSettings:
    """Defaults (push on, in-app on, email daily digest, frequency all) under what was saved."""
    stored = stored or {}
    saved = stored.get("categories") or {}
    categories = {}
    for category in Category:
        values = {k: v for k, v in (saved.get(category.value) or {}).items() if v is not None}
        try:
            categories[category] = CategoryPrefs(**values)
        except ValueError:
            categories[category] = CategoryPrefs()
    return NotificationSettings(
        push_enabled=bool(stored.get("push_enabled", True)),
        email_enabled=bool(stored.get("email_enabled", True)),
        categories=categories,
    )


def merge_patch(stored: dict[str, Any] | None, patch: SettingsPatch) -> dict[str, Any]:
    """The sparse stored document after applying `patch`."""
    result: dict[str, Any] = {
        "push_enabled": (stored or {}).get("push_enabled"),
        "email_enabled": (stored or {}).get("email_enabled"),
        "categories": {k: dict(v) for k, v in ((stored or {}).get("categories") or {}).items()},
    }
    if patch.push_enabled is not None:
        result["push_enabled"] = patch.push_enabled
    if patch.email_enabled is not None:
        result["email_enabled"] = patch.email_enabled
    for category, change in (patch.categories or {}).items():
        entry = result["categories"].setdefault(category.value, {})
        entry.update(change.model_dump(exclude_none=True))
    return {k: v for k, v in result.items() if v is not None and v != {}}


@dataclass(frozen=True)
class Channels:
    in_app: bool
    push: bool
    email: str  # off / on / daily / weekly

    @property
    def any(self) -> bool:
        return self.in_app or self.push or self.email != "off"


NO_CHANNELS = Channels(False, False, "off")


def channels_for(
    settings: NotificationSettings, type: NotificationType | str, *, actor_is_followed: bool
) -> Channels:
    """Which channels a notification of `type` goes to under these preferences."""
    spec = info(type)
    prefs = settings.categories[spec.category]
    email = prefs.email if settings.email_enabled else "off"
    if prefs.frequency == "none" or (
        prefs.frequency == "important" and not spec.important and not actor_is_followed
    ):
        return Channels(spec.critical, False, "off") if spec.critical else NO_CHANNELS
    return Channels(
        in_app=prefs.in_app or spec.critical,
        push=prefs.push and settings.push_enabled,
        email=email,
    )
