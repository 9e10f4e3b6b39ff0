"""The Nexgate gateway wire protocol: names, codecs, typed payloads and a reference client.

Importable by the server, by clients and by the load-test harness; PROTOCOL.md is the spec.
"""

from protocol.codec import CODECS, DecodeError, JsonCodec, MsgpackCodec, get_codec
from protocol.constants import (
    ENCODINGS,
    FATAL_CLOSE_CODES,
    PROTOCOL_VERSION,
    RESUMABLE_CLOSE_CODES,
    CloseCode,
    ErrorCode,
    Event,
    Op,
)

__all__ = [
    "CODECS",
    "ENCODINGS",
    "FATAL_CLOSE_CODES",
    "PROTOCOL_VERSION",
    "RESUMABLE_CLOSE_CODES",
    "CloseCode",
    "DecodeError",
    "ErrorCode",
    "Event",
    "JsonCodec",
    "MsgpackCodec",
    "Op",
    "get_codec",
]
