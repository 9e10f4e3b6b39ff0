"""Gateway calls of the notifications capability: the same domain actions as the HTTP routes
(server/http/notifications.py), as `call {method, params}` on the socket.

Results are what the matching HTTP route returns. Events (notification.created,
notification.updated, notification.read, notification.read_all, notification.deleted) are
listed in protocol/PROTOCOL.md.
"""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import BaseModel, ConfigDict

from server.domain import notifications
from server.domain.auth_tokens import Principal
from server.domain.context import Context
from server.domain.notification_catalog import SettingsPatch
from server.domain.notification_commands import ListNotifications
from server.ws.calls import call


class NotificationRef(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: uuid.UUID


class NoParams(BaseModel):
    model_config = ConfigDict(extra="forbid")


@call("notifications.list", params=ListNotifications)
async def list_notifications(
    ctx: Context, principal: Principal, params: ListNotifications
) -> dict[str, Any]:
    return await notifications.list_notifications(
        ctx,
        principal,
        limit=params.limit,
        cursor=params.cursor,
        unread=params.unread,
        types=params.type_values(),
        category=params.category.value if params.category else None,
    )


@call("notifications.unread_count", params=NoParams)
async def unread_count(ctx: Context, principal: Principal, params: NoParams) -> dict[str, int]:
    return await notifications.unread_count(ctx, principal)


@call("notifications.read", params=NotificationRef)
async def mark_read(ctx: Context, principal: Principal, params: NotificationRef) -> dict:
    return await notifications.mark_read(ctx, principal, params.id)


@call("notifications.read_all", params=NoParams)
async def read_all(ctx: Context, principal: Principal, params: NoParams) -> dict[str, int]:
    return await notifications.mark_all_read(ctx, principal)


@call("notifications.delete", params=NotificationRef)
async def delete(ctx: Context, principal: Principal, params: NotificationRef) -> None:
    await notifications.delete(ctx, principal, params.id)


@call("notifications.settings.get", params=NoParams)
async def get_settings(ctx: Context, principal: Principal, params: NoParams) -> Any:
    return await notifications.get_settings(ctx, principal)


@call("notifications.settings.update", params=SettingsPatch)
async def update_settings(ctx: Context, principal: Principal, params: SettingsPatch) -> Any:
    return await notifications.update_settings(ctx, principal, params)
