"""HTTP routes of the gateway: the WebSocket, the long-poll and SSE fallbacks, and the stream
tickets a browser app on another site opens the SSE stream with."""

from __future__ import annotations

from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, Field, field_validator

from server.domain import stream_tickets
from server.http.endpoint import context, endpoint, principal
from server.ws import fallback
from server.ws.endpoint import serve_socket
from server.ws.hub import HUB

routes = web.RouteTableDef()
TAGS = ("gateway",)


class SocketQuery(BaseModel):
    """How the socket speaks: frame encoding and protocol version."""

    encoding: Literal["json", "msgpack"] = Field(
        "json", description="json: text frames (orjson); msgpack: binary frames"
    )
    v: Literal[1] | None = Field(None, description="Protocol version (only 1 exists)")

    @field_validator("v", mode="before")
    @classmethod
    def _version_number(cls, value: Any) -> Any:
        # A query string is text: `?v=1` must compare as the number the Literal names.
        if isinstance(value, str) and value.isascii() and value.isdigit():
            return int(value)
        return value


class EventsQuery(BaseModel):
    """Where to resume the long poll, and how long to wait."""

    after: int | None = Field(
        None,
        ge=0,
        description="Return events with s > after. Omit to learn the current seq at once.",
    )
    epoch: str | None = Field(
        None,
        max_length=64,
        description="The epoch `after` counts in (from the last answer): 410 log_reset if the "
        "log has a new one",
    )
    timeout: float | None = Field(
        None, ge=0, description="Seconds to wait for an event (capped by the server's limit)"
    )
    limit: int = Field(100, ge=1, le=1000)


class SseQuery(BaseModel):
    """Where to resume the stream, and which live topics to add."""

    after: int | None = Field(
        None, ge=0, description="Replay events with s > after first (Last-Event-ID wins)"
    )
    epoch: str | None = Field(
        None, max_length=64, description="The epoch `after` counts in (Last-Event-ID wins)"
    )
    topics: str | None = Field(
        None, max_length=4000, description="Comma-separated live topics, e.g. poll:<id>"
    )
    ticket: str | None = Field(
        None,
        max_length=200,
        description="A single-use stream ticket (POST /api/gateway/tickets), for an "
        "EventSource that cannot send the Authorization header",
    )


class TicketOut(BaseModel):
    """A single-use ticket for one SSE stream: pass it as `?ticket=` within `expires_in`
    seconds."""

    ticket: str
    expires_in: int = Field(description="Seconds the ticket stays redeemable")


class EventEnvelope(BaseModel):
    """One event frame, as the socket sends it: type `t`, per-user sequence number `s`, data
    `d`."""

    op: Literal["event"]
    t: str
    s: int
    d: dict[str, Any]


class EventsPage(BaseModel):
    """The events after `after`, in order, and the seq to resume from."""

    events: list[EventEnvelope]
    seq: int = Field(description="Pass as `after` next time")
    epoch: str = Field(description="The epoch `seq` counts in: pass as `epoch` next time")


@routes.get("/api/gateway/ws")
@endpoint(
    "The real-time gateway (WebSocket upgrade). Authenticates in-band with identify {token}; "
    "see protocol/PROTOCOL.md",
    query=SocketQuery,
    public=True,
    tags=TAGS,
    errors=(400, 422, 426),
    operation_id="gateway.connect",
)
async def gateway_socket(request: web.Request, query: SocketQuery) -> web.StreamResponse:
    """Upgrades to a WebSocket (101) carrying envelopes `{op, d, s, t, id}`: hello, then identify
    with the access token within the hello timeout, then events, calls and subscriptions. Not a
    plain HTTP request: 426 without the upgrade headers."""
    return await serve_socket(request, query.encoding)


@routes.get("/api/gateway/events")
@endpoint(
    "Long-poll fallback: the user's events after a seq, at once or within the timeout",
    query=EventsQuery,
    response=EventsPage,
    tags=TAGS,
    errors=(401, 410, 422),
    operation_id="gateway.poll_events",
)
async def gateway_events(request: web.Request, query: EventsQuery) -> dict[str, Any]:
    """For clients that cannot hold a socket: the same events with the same sequence numbers.
    Without `after`, answers the current seq at once; with it, the events after it as soon as
    there are any, else an empty list after `timeout`. 410 when the log no longer holds them
    (refetch state over HTTP, then poll without `after`)."""
    hub = request.app[HUB]
    limit_s = hub.settings.longpoll_timeout_s
    timeout = limit_s if query.timeout is None else min(query.timeout, limit_s)
    return await fallback.long_poll(
        hub, principal(request), query.after, timeout, query.limit, query.epoch
    )


@routes.post("/api/gateway/tickets")
@endpoint(
    "Get a single-use ticket that opens one SSE stream (for EventSource on another site)",
    response=TicketOut,
    status=201,
    tags=TAGS,
    errors=(401, 429),
    operation_id="gateway.create_stream_ticket",
)
async def create_stream_ticket(request: web.Request) -> dict[str, Any]:
    """An EventSource cannot send `Authorization`, and a web app on another site cannot rely
    on cookies: it asks for a ticket with its bearer token and opens
    `/api/gateway/sse?ticket=...` within `expires_in` seconds. One ticket opens one stream;
    get a new one for each reconnect."""
    issued = await stream_tickets.issue(context(request), principal(request))
    return {"ticket": issued.ticket, "expires_in": issued.expires_in}


def _bearer_or_ticket(handler):
    """Document the stream's two schemes: the bearer token or a stream ticket."""
    # @endpoint's spec rides on the handler, unseen by mypy.
    handler.__endpoint__.extra["security"] = [{"bearer": []}, {"streamTicket": []}]
    return handler


@routes.get("/api/gateway/sse")
@_bearer_or_ticket
@endpoint(
    "SSE fallback: the user's events as text/event-stream (id = <epoch>:<seq>; honours "
    "Last-Event-ID), "
    "plus optional live topics",
    query=SseQuery,
    # Authenticated in the handler: the bearer token, the session cookie or a stream ticket.
    public=True,
    tags=TAGS,
    errors=(401, 404, 410, 422),
    operation_id="gateway.stream_events",
)
async def gateway_sse(request: web.Request, query: SseQuery) -> web.StreamResponse:
    """A `text/event-stream` of the user's events (each with `id` = `<epoch>:<seq>`, so a
    reconnect with Last-Event-ID resumes), plus the events of the public live topics asked for.
    Authenticated by the bearer token, the web session cookie, or `ticket` (single use). A
    cursor the log no longer holds (trimmed, or of an older epoch) is 410; an EventSource
    (`Accept: text/event-stream`) gets `event: resync` instead, which it can read."""
    hub = request.app[HUB]
    topics = [t.strip() for t in (query.topics or "").split(",") if t.strip()]
    if query.ticket is not None:
        who = await stream_tickets.redeem(context(request), query.ticket)
    else:
        who = principal(request)
    return await fallback.sse(request, hub, who, query.after, topics, query.epoch)
