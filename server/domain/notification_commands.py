"""Command models of the notifications capability: one per action that takes parameters,
used by both transports (HTTP `GET /api/notifications` and the gateway's `notifications.list`)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AliasChoices, Field, WithJsonSchema, field_validator

from server.domain.notification_catalog import Category, NotificationType
from server.pagination import PageQuery


class ListNotifications(PageQuery):
    """Your notification center, latest activity first, keyset-paginated."""

    unread: bool = Field(False, description="Only unread notifications")
    # HTTP sends `type=a,b` (one query parameter, comma-separated; documented as such), the
    # gateway `types: [a, b]`. The alias has a default, so the plugin's "required dynamic
    # alias" concern (a constructor argument it cannot name) does not apply.
    types: Annotated[  # type: ignore[pydantic-alias]
        list[NotificationType] | None,
        WithJsonSchema({"anyOf": [{"type": "string", "maxLength": 512}, {"type": "null"}]}),
    ] = Field(
        None,
        validation_alias=AliasChoices("type", "types"),
        max_length=len(NotificationType),
        description='One type or several, comma-separated (e.g. "mention_post,mention_comment")',
    )
    category: Category | None = Field(None, description="Only this category")

    @field_validator("types", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):
            if len(value) > 512:
                raise ValueError("at most 512 characters")
            return [item.strip() for item in value.split(",")]
        return value

    def type_values(self) -> list[str] | None:
        return [t.value for t in self.types] if self.types else None
