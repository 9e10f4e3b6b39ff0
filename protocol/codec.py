"""Codecs: JSON (orjson, WebSocket text frames) and msgpack (binary frames).

Both turn one envelope dict into bytes and back. UUIDs, datetimes (ISO 8601, UTC) and Decimals
(as strings, exact) are encoded the same way in both, so a client sees identical values.
"""

from __future__ import annotations

import datetime as _dt
import uuid
from decimal import Decimal
from typing import Any, Final

import msgpack
import orjson

from protocol.constants import MAX_CALL_ID_CHARS


class DecodeError(ValueError):
    """The bytes are not one valid envelope."""


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, _dt.datetime | _dt.date | _dt.time):
        return value.isoformat()
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    dump = getattr(value, "model_dump", None)  # pydantic models
    if dump is not None:
        return dump(mode="json")
    raise TypeError(f"cannot encode {type(value).__name__}")


_ORJSON_OPTS: Final = orjson.OPT_NON_STR_KEYS


def json_dumps(value: Any) -> bytes:
    return orjson.dumps(value, default=_default, option=_ORJSON_OPTS)


def _check(frame: Any) -> dict[str, Any]:
    if not isinstance(frame, dict):
        raise DecodeError("a frame must be an object")
    op = frame.get("op")
    if not isinstance(op, str) or not op:
        raise DecodeError("a frame needs a string 'op'")
    d = frame.get("d")
    if d is not None and not isinstance(d, dict):
        raise DecodeError("'d' must be an object")
    fid = frame.get("id")
    if fid is not None:
        if isinstance(fid, bool) or not isinstance(fid, str | int):
            raise DecodeError("'id' must be a string or an integer")
        if isinstance(fid, str) and len(fid) > MAX_CALL_ID_CHARS:
            raise DecodeError(f"'id' is longer than {MAX_CALL_ID_CHARS} characters")
    return frame


class JsonCodec:
    name: Final = "json"
    binary: Final = False

    @staticmethod
    def encode(frame: dict[str, Any]) -> bytes:
        """UTF-8 JSON bytes (send them as a text frame)."""
        return orjson.dumps(frame, default=_default, option=_ORJSON_OPTS)

    @staticmethod
    def decode(data: bytes | str) -> dict[str, Any]:
        try:
            frame = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise DecodeError(f"not valid JSON: {exc}") from None
        return _check(frame)


class MsgpackCodec:
    name: Final = "msgpack"
    binary: Final = True

    @staticmethod
    def encode(frame: dict[str, Any]) -> bytes:
        return msgpack.packb(frame, default=_default, use_bin_type=True, datetime=False)

    @staticmethod
    def decode(data: bytes | str) -> dict[str, Any]:
        if isinstance(data, str):
            raise DecodeError("msgpack frames must be binary")
        try:
            frame = msgpack.unpackb(data, raw=False, strict_map_key=True)
        except Exception as exc:  # msgpack raises several unrelated types
            raise DecodeError(f"not valid msgpack: {exc}") from None
        return _check(frame)


Codec = JsonCodec | MsgpackCodec
CODECS: Final[dict[str, type[JsonCodec] | type[MsgpackCodec]]] = {
    "json": JsonCodec,
    "msgpack": MsgpackCodec,
}


def get_codec(name: str) -> type[JsonCodec] | type[MsgpackCodec]:
    try:
        return CODECS[name]
    except KeyError:
        raise ValueError(f"unknown encoding {name!r}; use one of {', '.join(CODECS)}") from None
