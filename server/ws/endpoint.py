"""The gateway's WebSocket endpoint (GET /api/gateway/ws, routed by server/http/gateway.py):
the upgrade, the hello frame, one `Connection` run until the socket ends, and the bookkeeping
after it (save the session for resume, leave presence) that must survive the handler's
cancellation.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiohttp import web

from protocol.constants import PROTOCOL_VERSION, CloseCode, Op
from server.errors import BadRequest
from server.ws import metrics
from server.ws.connection import CLOSE_TIMEOUT_S, Connection
from server.ws.hub import HUB, Hub

log = logging.getLogger("nexgate.gateway")

_WS_CODE_MAP = {1009: CloseCode.FRAME_TOO_LARGE, 1007: CloseCode.DECODE_ERROR}


class GatewaySocket(web.WebSocketResponse):
    """aiohttp's socket, closing with the protocol's codes instead of RFC ones where the
    protocol has its own (frame too large → 4011, invalid UTF-8 → 4002)."""

    async def close(self, *, code: int = 1000, message: bytes = b"", drain: bool = True) -> bool:
        mapped = _WS_CODE_MAP.get(code)
        if mapped is not None:
            code = int(mapped)
            message = b"frame too large" if mapped == CloseCode.FRAME_TOO_LARGE else b"bad utf-8"
            metrics.CLOSES.labels(str(code)).inc()
        return await super().close(code=code, message=message, drain=drain)


def hello_frame(hub: Hub, encoding: str) -> dict[str, Any]:
    return {
        "op": Op.HELLO,
        "d": {
            "heartbeat_interval_ms": hub.settings.heartbeat_interval_ms,
            "session_timeout_ms": int(hub.session_timeout_s * 1000),
            "identify_timeout_ms": int(hub.hello_timeout_s * 1000),
            "protocol_version": PROTOCOL_VERSION,
            "max_frame_bytes": hub.max_frame_bytes,
            "encoding": encoding,
        },
    }


_AFTER_CLOSE: set[asyncio.Future] = set()


async def _after_close(hub: Hub, conn: Connection, last: bool) -> None:
    try:
        if conn.close_code != CloseCode.SESSION_REPLACED:
            await conn.save_session()  # resumable for the log age from now
        if last:
            assert conn.user_id is not None  # scheduled only for an identified connection
            await hub.user_offline(conn.user_id)
    except Exception:
        log.exception("session bookkeeping failed")


async def serve_socket(request: web.Request, encoding: str) -> web.StreamResponse:
    """GET /api/gateway/ws: upgrade, say hello, run the state machine until the socket ends.
    `encoding` ("json" / "msgpack") and the protocol version were validated by the route."""
    hub = request.app[HUB]
    if encoding not in ("json", "msgpack"):
        raise BadRequest("encoding must be 'json' or 'msgpack'.")
    if hub.closing:
        raise web.HTTPServiceUnavailable(text="The server is restarting.")
    ws = GatewaySocket(
        timeout=CLOSE_TIMEOUT_S,
        autoping=True,
        compress=False,
        max_msg_size=hub.max_frame_bytes,
        decode_text=False,
    )
    if not ws.can_prepare(request):
        raise web.HTTPUpgradeRequired(
            text="This endpoint speaks WebSocket: connect with an 'Upgrade: websocket' request.",
            headers={"Upgrade": "websocket"},
        )
    writer = await ws.prepare(request)
    binary = encoding == "msgpack"
    conn = Connection(hub, ws, request.transport, writer, binary)
    hub.conns.add(conn)
    gauge = metrics.CONNECTIONS.labels("websocket", encoding)
    gauge.inc()
    try:
        conn.write_frame(hello_frame(hub, encoding))
        await conn.run()
    finally:
        gauge.dec()
        hub.conns.discard(conn)
        if not conn.closed:
            conn.closed = True
            hub.forget(conn)
        if conn.flusher is not None:
            conn.flusher.cancel()
        if conn.catcher is not None:
            conn.catcher.cancel()
        if conn.user_id is not None:
            last = hub.detach_user(conn)
            # Shielded: a handler cancelled as its socket goes away must still save the session
            # and leave presence, or the user would look online until presence_ttl_s expires.
            task = asyncio.ensure_future(_after_close(hub, conn, last))
            _AFTER_CLOSE.add(task)
            task.add_done_callback(_AFTER_CLOSE.discard)
            await asyncio.shield(task)
        if conn.closer is not None:
            await asyncio.shield(conn.closer)
    return ws
