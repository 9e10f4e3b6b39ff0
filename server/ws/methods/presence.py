"""`presence.query`: who of these users is online; optionally watch them for changes."""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import BaseModel, Field

from protocol.constants import MAX_PRESENCE_WATCH
from server.domain import presence
from server.domain.auth_tokens import Principal
from server.domain.context import Context
from server.errors import ValidationFailed
from server.ws.calls import call


class PresenceQuery(BaseModel):
    user_ids: list[uuid.UUID] = Field(min_length=1, max_length=100)
    watch: bool = True


@call("presence.query", params=PresenceQuery, session=True)
async def presence_query(
    ctx: Context, principal: Principal, params: PresenceQuery, *, session: Any = None
) -> dict[str, Any]:
    """Statuses of up to 100 users; with watch (default) this socket also receives
    `presence.updated` events when any of them goes online or offline."""
    statuses, visible = await presence.query(ctx, principal, params.user_ids)
    if params.watch and session is not None:
        already = len(session.watching or ())
        new = [u for u in visible if u not in (session.watching or ())]
        if already + len(new) > MAX_PRESENCE_WATCH:
            raise ValidationFailed.field(
                "user_ids", f"a connection may watch at most {MAX_PRESENCE_WATCH} users"
            )
        session.hub.watch(session, new)
        await session.save_session()
    return {"presence": statuses}
