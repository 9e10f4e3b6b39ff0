"""HTTP routes of the notifications capability: /api/notifications."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from aiohttp import web
from pydantic import BaseModel

from server.app_keys import CONTEXT
from server.domain import notifications
from server.domain.notification_catalog import (
    Category,
    NotificationSettings,
    NotificationType,
    SettingsPatch,
)
from server.domain.notification_commands import ListNotifications
from server.http.endpoint import endpoint, path_id, principal

routes = web.RouteTableDef()
TAGS = ("notifications",)


class ActorOut(BaseModel):
    """Someone who caused a notification."""

    id: uuid.UUID
    username: str
    display_name: str
    profile_picture_url: str | None = None
    is_verified: bool = False


class ActionOut(BaseModel):
    """What tapping the notification opens."""

    kind: str
    target_type: str
    target_id: str


class NotificationOut(BaseModel):
    """A notification. Repeated activity on one entity is grouped into one notification: the
    latest actors, how many there were (`actor_count`) and how many events (`event_count`)."""

    id: uuid.UUID
    type: NotificationType
    category: Category
    entity_type: str
    entity_id: uuid.UUID
    actor_id: uuid.UUID | None
    actors: list[ActorOut]
    actor_count: int
    event_count: int
    data: dict[str, Any]
    content: str
    action: ActionOut
    is_read: bool
    read_at: datetime | None
    created_at: datetime
    updated_at: datetime


class NotificationPage(BaseModel):
    """A page of notifications, with your unread count."""

    items: list[NotificationOut]
    next_cursor: str | None
    unread_count: int


class UnreadOut(BaseModel):
    """Your unread notification count (what the badge shows)."""

    unread_count: int


class NotificationReadOut(BaseModel):
    """The notification marked read, and your unread count after it."""

    id: uuid.UUID
    is_read: bool
    read_at: datetime | None
    unread_count: int


class ReadAllOut(BaseModel):
    """How many notifications were marked read, and your unread count after it."""

    marked: int
    unread_count: int


# Fixed paths before the {id} ones.


@routes.get("/api/notifications")
@endpoint(
    "Your notifications, latest activity first (filter: unread, type, category)",
    query=ListNotifications,
    response=NotificationPage,
    tags=TAGS,
    errors=(422,),
    operation_id="notifications.list",
)
async def list_notifications(request: web.Request, query: ListNotifications) -> dict:
    """Your notification center, latest activity first, keyset-paginated; filter by unread, by
    type (one or several) or by category. The page carries your unread count."""
    return await notifications.list_notifications(
        request.app[CONTEXT],
        principal(request),
        limit=query.limit,
        cursor=query.cursor,
        unread=query.unread,
        types=query.type_values(),
        category=query.category.value if query.category else None,
    )


@routes.get("/api/notifications/unread-count")
@endpoint(
    "How many of your notifications are unread",
    response=UnreadOut,
    tags=TAGS,
    operation_id="notifications.unread_count",
)
async def unread_count(request: web.Request) -> dict:
    """The badge count; the gateway pushes changes to it with every notification event."""
    return await notifications.unread_count(request.app[CONTEXT], principal(request))


@routes.patch("/api/notifications/read-all")
@endpoint(
    "Mark all your notifications read",
    response=ReadAllOut,
    tags=TAGS,
    operation_id="notifications.mark_all_read",
)
async def read_all(request: web.Request) -> dict:
    """Marks every unread notification read; your other devices get `notification.read_all`."""
    return await notifications.mark_all_read(request.app[CONTEXT], principal(request))


@routes.get("/api/notifications/settings")
@endpoint(
    "Your notification preferences (per category: push, in-app, email, frequency)",
    response=NotificationSettings,
    tags=TAGS,
    operation_id="notifications.get_settings",
)
async def get_settings(request: web.Request) -> NotificationSettings:
    """Your preferences with the defaults filled in: master push and email switches, and per
    category push, in-app, email (off, on, daily, weekly) and frequency (all, important,
    none)."""
    return await notifications.get_settings(request.app[CONTEXT], principal(request))


@routes.patch("/api/notifications/settings")
@endpoint(
    "Change your notification preferences (only the given fields change)",
    body=SettingsPatch,
    response=NotificationSettings,
    tags=TAGS,
    errors=(422,),
    operation_id="notifications.update_settings",
    examples={
        "Pause all push": {"push_enabled": False},
        "Likes: in-app only, no email": {
            "categories": {"likes": {"push": False, "in_app": True, "email": "off"}}
        },
        "Weekly email digest of follows": {"categories": {"follows": {"email": "weekly"}}},
    },
)
async def patch_settings(request: web.Request, body: SettingsPatch) -> NotificationSettings:
    """Changes only the fields given (a category's unnamed fields keep their values) and answers
    the full preferences after the change."""
    return await notifications.update_settings(request.app[CONTEXT], principal(request), body)


@routes.patch("/api/notifications/{id}/read")
@endpoint(
    "Mark one notification read",
    response=NotificationReadOut,
    tags=TAGS,
    errors=(404, 422),
    operation_id="notifications.mark_read",
)
async def mark_read(request: web.Request) -> dict:
    """Idempotent; your other devices get `notification.read` with the new unread count."""
    return await notifications.mark_read(request.app[CONTEXT], principal(request), path_id(request))


@routes.delete("/api/notifications/{id}")
@endpoint(
    "Delete one notification",
    status=204,
    tags=TAGS,
    errors=(404, 422),
    operation_id="notifications.delete",
)
async def delete(request: web.Request) -> None:
    """Removes it from your notification center; your other devices get
    `notification.deleted`."""
    await notifications.delete(request.app[CONTEXT], principal(request), path_id(request))
