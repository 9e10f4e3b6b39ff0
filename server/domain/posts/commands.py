"""The command models of posts, validated once at the edge and shared by HTTP and the gateway
(same conventions as server/domain/messaging/commands.py: bodies refuse unknown fields, queries
ignore them, no text holds NUL). Class names are the OpenAPI component names."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import ConfigDict, Field, field_validator

from server.domain.messaging.commands import Command, Query
from server.pagination import PageQuery

MAX_CONTENT = 5_000  # the spec's post length, in characters (code points)
MAX_LINKS_PER_KIND = 10

Visibility = Literal["public", "followers", "private"]


def _distinct(values: list[uuid.UUID] | None) -> list[uuid.UUID] | None:
    if values is not None and len(set(values)) != len(values):
        raise ValueError("lists each id once")
    return values


class PlanLinkIn(Command):
    """An installment plan to show on the post (`is_featured`: highlighted)."""

    plan_id: uuid.UUID
    is_featured: bool = False


class _Links(Command):
    """Commerce items drawn as cards on the post, in the order given."""

    product_ids: list[uuid.UUID] | None = Field(None, max_length=MAX_LINKS_PER_KIND)
    shop_ids: list[uuid.UUID] | None = Field(
        None, max_length=MAX_LINKS_PER_KIND, description="Shops tagged on the post"
    )
    event_ids: list[uuid.UUID] | None = Field(None, max_length=MAX_LINKS_PER_KIND)
    group_ids: list[uuid.UUID] | None = Field(
        None, max_length=MAX_LINKS_PER_KIND, description="Buy-together groups, open ones only"
    )
    plans: list[PlanLinkIn] | None = Field(None, max_length=MAX_LINKS_PER_KIND)

    _distinct_ids = field_validator("product_ids", "shop_ids", "event_ids", "group_ids")(_distinct)

    @field_validator("plans")
    @classmethod
    def _distinct_plans(cls, plans: list[PlanLinkIn] | None) -> list[PlanLinkIn] | None:
        _distinct([p.plan_id for p in plans] if plans is not None else None)
        return plans


class PollIn(Command):
    """A poll to attach to the post."""

    question: str | None = Field(None, max_length=300, description="Default: the post's text")
    options: list[str] = Field(min_length=2, max_length=10)
    allow_multiple: bool = False
    is_anonymous: bool = Field(False, description="Voters are never listed")
    duration_s: int | None = Field(
        None, ge=300, le=30 * 86400, description="Open this long once published (default: open)"
    )

    @field_validator("options")
    @classmethod
    def _options(cls, options: list[str]) -> list[str]:
        cleaned = [" ".join(o.split()) for o in options]
        if any(not o or len(o) > 100 for o in cleaned):
            raise ValueError("each option is 1 to 100 characters")
        if len({o.casefold() for o in cleaned}) != len(cleaned):
            raise ValueError("options must differ")
        return cleaned


class VoteIn(Command):
    """The option(s) you vote for: one on a single-choice poll."""

    option_ids: list[uuid.UUID] = Field(min_length=1, max_length=10)


class CreatePostIn(_Links):
    """A new post: published at once (default), kept as a draft, or scheduled (`publish_at`).
    Invited co-authors must answer before a post waiting for them is published."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"content": "New drop at $acme_store! #sneakers @ana", "visibility": "public"},
                {"content": "Work in progress", "status": "draft"},
            ]
        }
    )

    content: str = Field("", max_length=MAX_CONTENT * 4)
    post_type: Literal["text", "image", "video", "poll", "mixed"] | None = Field(
        None, description="Default: text (polls arrive with the interactions capability)"
    )
    visibility: Visibility = "public"
    status: Literal["published", "draft"] = "published"
    publish_at: datetime | None = Field(None, description="Publish at this time (UTC) instead")
    collaborator_ids: list[uuid.UUID] | None = Field(
        None, max_length=50, description="Invite these users as co-authors"
    )
    poll: PollIn | None = Field(None, description="Makes it a poll post")
    media_ids: list[uuid.UUID] | None = Field(
        None, max_length=10, description="Your processed uploads to show, in order"
    )

    _distinct_collaborators = field_validator("collaborator_ids")(_distinct)


class EditPostIn(_Links):
    """What to change: the text (the previous version is kept), the audience, the cards (each
    list given replaces that kind), more co-authors to invite."""

    content: str | None = Field(None, max_length=MAX_CONTENT * 4)
    visibility: Visibility | None = None
    invite_collaborator_ids: list[uuid.UUID] | None = Field(None, max_length=50)
    media_ids: list[uuid.UUID] | None = Field(
        None, max_length=10, description="The media the post shows now, in order"
    )

    _distinct_collaborators = field_validator("invite_collaborator_ids")(_distinct)


class InviteIn(Command):
    """Users to invite as co-authors."""

    user_ids: list[uuid.UUID] = Field(min_length=1, max_length=50)

    _distinct_users = field_validator("user_ids")(_distinct)


class PostPageQuery(PageQuery, Query):
    """A page of posts."""


class PostRef(Command):
    post_id: uuid.UUID
