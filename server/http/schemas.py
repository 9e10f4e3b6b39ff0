"""Shared response schemas of the HTTP API (the OpenAPI document is generated from these)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None


class Relationship(BaseModel):
    following: Literal["pending", "accepted"] | None
    followed_by: Literal["pending", "accepted"] | None
    blocking: bool
    muting: bool


class UserOut(BaseModel):
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
    ok: bool = True
