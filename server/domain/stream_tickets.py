"""SSE stream tickets: how a browser app on another site opens the event stream.

An EventSource cannot send an `Authorization` header, and a cross-site app's cookies are
blocked as third-party cookies, so the app asks for a ticket with its bearer token and puts it
in the stream URL (`/api/gateway/sse?ticket=...`). A ticket is opaque, lives a few seconds
(gateway.stream_ticket_ttl_s) and opens one stream: URLs end up in logs and browser history, so
the one in the URL must be worthless once used or a moment later. It is kept on the bus (any
node redeems it, exactly once: TicketStore.take_ticket) under its digest, not as is.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from server.domain import accounts
from server.domain.auth_tokens import Principal, new_opaque_token, token_digest
from server.domain.context import Context
from server.errors import Unauthorized


@dataclass(frozen=True, slots=True)
class StreamTicket:
    ticket: str
    expires_in: int


def _key(ticket: str) -> str:
    return "sse:" + token_digest(ticket).hex()


async def issue(ctx: Context, principal: Principal) -> StreamTicket:
    """A new single-use ticket standing for `principal` for stream_ticket_ttl_s."""
    ticket = new_opaque_token()
    ttl_s = ctx.settings.gateway.stream_ticket_ttl_s
    record = {
        "user_id": str(principal.user_id),
        "username": principal.username,
        "roles": list(principal.roles),
    }
    await ctx.bus.put_ticket(_key(ticket), record, ttl_s)
    return StreamTicket(ticket, max(1, round(ttl_s)))


async def redeem(ctx: Context, ticket: str) -> Principal:
    """The principal of an unused, unexpired ticket, which is used up by this call; anything
    else (unknown, used, expired, the account deactivated meanwhile) is Unauthorized."""
    record = await ctx.bus.take_ticket(_key(ticket)) if ticket else None
    if record is None:
        raise Unauthorized(
            "The stream ticket is unknown, expired or already used: get a new one "
            "(POST /api/gateway/tickets) for each stream you open."
        )
    principal = Principal(uuid.UUID(record["user_id"]), record["username"], tuple(record["roles"]))
    await accounts.ensure_active(ctx, principal)
    return principal
