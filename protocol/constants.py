"""Names of the wire protocol: ops, close codes, event types, limits. Shared by server and clients.

Every frame is one envelope: ``{"op": str, "d": object?, "s": int?, "t": str?, "id": str?,
"topic": str?}``. See PROTOCOL.md for the rules of each op.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Final

PROTOCOL_VERSION: Final = 1
ENCODINGS: Final = ("json", "msgpack")


class Op:
    """Frame names (the envelope's ``op``)."""

    # server -> client
    HELLO: Final = "hello"
    READY: Final = "ready"
    RESUMED: Final = "resumed"
    HEARTBEAT_ACK: Final = "heartbeat_ack"
    EVENT: Final = "event"
    REPLY: Final = "reply"
    INVALID_SESSION: Final = "invalid_session"
    RECONNECT: Final = "reconnect"
    ERROR: Final = "error"
    # client -> server
    IDENTIFY: Final = "identify"
    RESUME: Final = "resume"
    HEARTBEAT: Final = "heartbeat"
    CALL: Final = "call"
    SUBSCRIBE: Final = "subscribe"
    UNSUBSCRIBE: Final = "unsubscribe"


CLIENT_OPS: Final = frozenset(
    {Op.IDENTIFY, Op.RESUME, Op.HEARTBEAT, Op.CALL, Op.SUBSCRIBE, Op.UNSUBSCRIBE}
)
SERVER_OPS: Final = frozenset(
    {
        Op.HELLO,
        Op.READY,
        Op.RESUMED,
        Op.HEARTBEAT_ACK,
        Op.EVENT,
        Op.REPLY,
        Op.INVALID_SESSION,
        Op.RECONNECT,
        Op.ERROR,
    }
)


class CloseCode(IntEnum):
    """WebSocket close codes the server uses (4000-4099). See PROTOCOL.md for what to do."""

    UNKNOWN_ERROR = 4000  # server-side failure; reconnect and resume
    UNKNOWN_OP = 4001  # an op the server does not know, or one a client may not send
    DECODE_ERROR = 4002  # the frame is not a valid envelope in the negotiated encoding
    NOT_AUTHENTICATED = 4003  # no identify/resume within the hello timeout, or a frame before it
    AUTHENTICATION_FAILED = 4004  # the token was rejected (bad, expired, account disabled)
    ALREADY_AUTHENTICATED = 4005  # identify / resume sent twice
    SESSION_REPLACED = 4006  # another connection resumed this session
    INVALID_SEQ = 4007  # resume with a seq the server never issued
    RATE_LIMITED = 4008  # more frames than the budget allows
    SESSION_TIMEOUT = 4009  # no heartbeat for two intervals
    SLOW_CONSUMER = 4010  # the client could not keep up; reconnect and resume
    FRAME_TOO_LARGE = 4011  # a frame over the size limit
    SERVER_RESTART = 4012  # the node is going away; reconnect (to any node) and resume
    TOO_MANY_SOCKETS = 4013  # the user opened more sockets than allowed; this was the oldest
    LOG_RESET = 4014  # the user's event log lost its history (new epoch): identify, refetch


# Codes after which a client should reconnect and `resume` (the others need a fix or identify).
RESUMABLE_CLOSE_CODES: Final = frozenset(
    {
        CloseCode.UNKNOWN_ERROR,
        CloseCode.SESSION_TIMEOUT,
        CloseCode.SLOW_CONSUMER,
        CloseCode.SERVER_RESTART,
        1001,  # going away
        1006,  # abnormal closure (network)
        1011,  # internal error
        1012,  # service restart
    }
)
# Codes after which reconnecting with the same token and frames cannot help.
FATAL_CLOSE_CODES: Final = frozenset({CloseCode.AUTHENTICATION_FAILED, CloseCode.SESSION_REPLACED})


class Event:
    """Event type names (the envelope's ``t``) the gateway itself emits or knows of.

    Capabilities add their own (``message.created``, ``notification.created``, ...); the
    catalogue in PROTOCOL.md lists them all.
    """

    PRESENCE_UPDATED: Final = "presence.updated"


class ErrorCode:
    """``code`` values of ``reply {ok: false, error}`` and ``error`` frames."""

    UNKNOWN_METHOD: Final = "unknown_method"
    VALIDATION_FAILED: Final = "validation_failed"
    UNKNOWN_TOPIC: Final = "unknown_topic"
    NOT_FOUND: Final = "not_found"
    FORBIDDEN: Final = "forbidden"
    TOO_MANY_SUBSCRIPTIONS: Final = "too_many_subscriptions"
    RATE_LIMITED: Final = "rate_limited"
    INTERNAL_ERROR: Final = "internal_error"
    UNAVAILABLE: Final = "unavailable"  # a backing service is down for a moment: retry later
    BAD_REQUEST: Final = "bad_request"


# Limits a client can rely on (the server's config may raise frame limits; these are defaults).
MAX_TOPICS_PER_CONNECTION: Final = 100
MAX_PRESENCE_WATCH: Final = 200
MAX_CALL_ID_CHARS: Final = 64
