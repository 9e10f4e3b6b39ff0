"""Gateway registrations of the commerce capability: `subscribe group:<id>` is allowed to
whoever may read the group over HTTP (blocked either way: not found, as if absent)."""

from __future__ import annotations

from server.domain import commerce
from server.domain.auth_tokens import Principal
from server.domain.context import Context
from server.ids import parse_uuid
from server.ws.calls import topic_authorizer


@topic_authorizer("group")
async def can_view_group(ctx: Context, principal: Principal, entity_id: str) -> bool:
    group_id = parse_uuid(entity_id)
    return group_id is not None and await commerce.can_view_group(ctx, principal, group_id)
