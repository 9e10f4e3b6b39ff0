"""Shared response schemas of the HTTP API (the OpenAPI document is generated from these)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict

T = TypeVar("T")

PAGE_DESCRIPTION = (
    "One page of a list. Pass `next_cursor` back as `?cursor=` for the next page; null means "
    "this is the last one."
)


class Page(BaseModel, Generic[T]):
    """One page of a list: pass `next_cursor` back as `?cursor=` for the next page."""

    # A parametrized page (Page[UserOut]) has no docstring of its own; the config is inherited.
    model_config = ConfigDict(json_schema_extra={"description": PAGE_DESCRIPTION})

    items: list[T]
    next_cursor: str | None


class Relationship(BaseModel):
    """Your relationship to the account: follows each way (pending or accepted), and whether
    you block or mute it."""

    following: Literal["pending", "accepted"] | None
    followed_by: Literal["pending", "accepted"] | None
    blocking: bool
    muting: bool


class UserOut(BaseModel):
    """A profile as you may see it: the email only on your own, the relationship only on
    someone else's."""

    model_config = ConfigDict(extra="allow")

    id: uuid.UUID
    username: str
    display_name: str
    bio: str | None
    profile_picture_url: str | None
    cover_photo_url: str | None
    location: str | None
    website: str | None
    is_private: bool
    is_verified: bool
    followers_count: int
    following_count: int
    posts_count: int
    created_at: datetime
    updated_at: datetime
    email: str | None = None
    relationship: Relationship | None = None


class Ok(BaseModel):
    """The request was done."""

    ok: bool = True
