"""Gateway registrations of the commerce capability: `subscribe group:<id>` is allowed to
whoever may read the group over HTTP (blocked either way: not found, as if absent)."""

from __future__ import annotations

from server.domain import access
from server.domain.auth_tokens import Principal
from server.domain.context import Context
from server.errors import NotFound
from server.ids import parse_uuid
from server.ws.calls import topic_authorizer


@topic_authorizer("group")
async def can_view_group(ctx: Context, principal: Principal, entity_id: str) -> bool:
    group_id = parse_uuid(entity_id)
    if group_id is None:
        return False
    try:
        await access.access_group(ctx, ctx.db, principal, group_id)
    except NotFound:
        return False
    return True
