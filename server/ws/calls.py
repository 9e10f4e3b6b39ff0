"""Gateway call methods and topic authorizers: the registry other capabilities fill.

Registering a call method (from YOUR module; put it in ``server/ws/methods/<capability>.py``,
and name it as the capability's ``gateway`` module in ``server/capabilities.py``, which
imports it before the gateway starts; this registry imports none of them)::

    from pydantic import BaseModel
    from server.ws.calls import call

    class SendParams(BaseModel):
        conversation_id: uuid.UUID
        text: str

    @call("messages.send", params=SendParams)
    async def send(ctx, principal, params: SendParams) -> dict:
        return await messaging.send_message(ctx, principal, params.conversation_id, params.text)

- ``ctx`` is the domain ``Context``, ``principal`` the identified ``Principal``, ``params`` the
  validated model instance (``params=None`` → the raw params dict).
- The return value (JSON-able: dicts, lists, UUIDs, datetimes, Decimals, pydantic models)
  becomes ``reply {id, ok: true, result}``.
- Raise domain ``AppError``s as usual: they become ``reply {id, ok: false, error: {code,
  message[, errors][, retry_after]}}`` with ``code`` = the error's ``code`` (``not_found``,
  ``forbidden``, ``validation_failed``, ``rate_limited``, ...). Invalid params reply
  ``validation_failed`` with per-field ``errors``; an unknown method replies ``unknown_method``;
  any other exception is logged and replies ``internal_error``.
- ``@call(..., session=True)``: the handler also gets ``session=`` (the live
  ``server.ws.connection.Connection``) for methods that act on the connection itself
  (``presence.query`` watches users for this socket).
- Calls of one connection run one at a time, in the order they arrived.

Registering a topic authorizer (``subscribe {topic: "group:<id>"}`` → prefix ``group``)::

    from server.ws.calls import topic_authorizer

    @topic_authorizer("group")
    async def can_view_group(ctx, principal, entity_id: str) -> bool:
        group_id = parse_uuid(entity_id)
        if group_id is None:
            return False
        try:
            await access.access_group(ctx, ctx.db, principal, group_id)  # the HTTP read's rule
        except NotFound:
            return False
        return True

- ``entity_id`` is the text after the first ``:``; an id that parses as a UUID arrives in its
  canonical form (lowercase, dashed: ``canonical_topic``), which is also the topic subscribed
  and the one events are published on (parse anything else; a malformed one → return False or
  raise ``NotFound``). Return True to allow. False replies ``not_found`` (as the HTTP read of
  something you may not see; blocks never leak). Raised ``AppError``s map like call errors.
- A prefix nobody registered replies ``unknown_topic``. Publish to a topic from a domain action
  with ``ctx.events.to_topic(tx, "group:<id>", "group.updated", data)``.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from protocol.constants import ErrorCode
from server.bus.faults import is_bus_failure
from server.domain.auth_tokens import Principal
from server.domain.context import Context
from server.errors import AppError, RateLimited, ValidationFailed

log = logging.getLogger("nexgate.gateway")

CallHandler = Callable[..., Awaitable[Any]]
TopicAuthorizer = Callable[[Context, Principal, str], Awaitable[bool]]


@dataclass(frozen=True, slots=True)
class CallSpec:
    method: str
    fn: CallHandler
    params: type[BaseModel] | None
    session: bool
    summary: str


CALLS: dict[str, CallSpec] = {}
TOPIC_AUTHORIZERS: dict[str, TopicAuthorizer] = {}


def call(
    method: str,
    *,
    params: type[BaseModel] | None = None,
    session: bool = False,
    summary: str = "",
) -> Callable[[CallHandler], CallHandler]:
    """Register `fn(ctx, principal, params[, session=])` as the gateway method `method`."""

    def register(fn: CallHandler) -> CallHandler:
        existing = CALLS.get(method)
        if existing is not None and existing.fn.__qualname__ != fn.__qualname__:
            raise RuntimeError(f"gateway call {method!r} is registered twice")
        CALLS[method] = CallSpec(method, fn, params, session, summary or (fn.__doc__ or ""))
        return fn

    return register


def topic_authorizer(prefix: str) -> Callable[[TopicAuthorizer], TopicAuthorizer]:
    """Register `fn(ctx, principal, entity_id) -> bool` for topics `<prefix>:<entity_id>`."""
    if not prefix or ":" in prefix:
        raise ValueError("a topic prefix is a non-empty name without ':'")

    def register(fn: TopicAuthorizer) -> TopicAuthorizer:
        TOPIC_AUTHORIZERS[prefix] = fn
        return fn

    return register


def error_body(exc: AppError) -> dict[str, Any]:
    body: dict[str, Any] = {"code": exc.code, "message": exc.detail}
    if exc.errors:
        body["errors"] = exc.errors
    if isinstance(exc, RateLimited):
        body["retry_after"] = exc.retry_after
    return body


def _validation_error(exc: ValidationError) -> AppError:
    errors: dict[str, list[str]] = {}
    for err in exc.errors():
        loc = ".".join(str(part) for part in err["loc"]) or "params"
        errors.setdefault(loc, []).append(err["msg"])
    first, messages = next(iter(errors.items()))
    return ValidationFailed(f"{first}: {messages[0]}", errors=errors)


async def run_call(
    ctx: Context, principal: Principal, method: Any, params: Any, session: Any = None
) -> dict[str, Any]:
    """Run one call; return the reply body `{ok, result}` or `{ok: false, error}`."""
    spec = CALLS.get(method) if isinstance(method, str) else None
    if spec is None:
        return {
            "ok": False,
            "error": {
                "code": ErrorCode.UNKNOWN_METHOD,
                "message": f"No gateway method {method!r}.",
            },
        }
    try:
        # One budget per user: gateway calls spend the same API limit as HTTP requests.
        await ctx.limit(f"api:{principal.user_id}", ctx.settings.rate_limits.api, "API requests")
        if params is None:
            params = {}
        if not isinstance(params, dict):
            raise ValidationFailed.field("params", "must be an object")
        value: Any = params
        if spec.params is not None:
            try:
                value = spec.params.model_validate(params)
            except ValidationError as exc:
                raise _validation_error(exc) from None
        if spec.session:
            result = await spec.fn(ctx, principal, value, session=session)
        else:
            result = await spec.fn(ctx, principal, value)
    except AppError as exc:
        return {"ok": False, "error": error_body(exc)}
    except Exception as exc:
        if is_bus_failure(exc):
            log.warning("gateway call %s: bus unavailable: %s", method, exc)
            return {
                "ok": False,
                "error": {
                    "code": ErrorCode.UNAVAILABLE,
                    "message": "A backing service is temporarily unavailable; retry shortly.",
                },
            }
        log.exception("gateway call %s failed", method)
        return {
            "ok": False,
            "error": {"code": ErrorCode.INTERNAL_ERROR, "message": "Something went wrong."},
        }
    return {"ok": True, "result": result}


# Topic prefixes the gateway uses internally; clients cannot subscribe to them.
RESERVED_TOPIC_PREFIXES = frozenset({"presence", "gateway"})


def canonical_topic(topic: str) -> str:
    """`topic` with its id in canonical form when the id is a UUID (`group:0190ABCD...` or
    dashless → `group:0190abcd-...`): domain actions publish on `f"{prefix}:{uuid}"`, so a
    subscription under any other spelling of the same id would never receive an event.
    Subscribe, unsubscribe, resume and SSE all canonicalize before authorizing."""
    prefix, sep, entity = topic.partition(":")
    if not sep or not entity:
        return topic
    try:
        return f"{prefix}:{uuid.UUID(entity)}"
    except ValueError:
        return topic  # not a UUID: the kind's authorizer decides (a malformed id is refused)


async def still_allowed(ctx: Context, principal: Principal, topic: str) -> bool:
    """Whether a live subscription to `topic` may go on (asked again after a block): its
    authorizer's answer, without spending the user's API budget (the server asks, not them).
    An authorizer that fails refuses: a subscription is dropped rather than leaked."""
    prefix, _, entity = topic.partition(":")
    authorizer = TOPIC_AUTHORIZERS.get(prefix)
    if authorizer is None:
        return True  # not a kind with rules of its own (nothing to re-check)
    try:
        return bool(await authorizer(ctx, principal, entity))
    except AppError:
        return False
    except Exception:
        log.exception("topic authorizer %s failed on a re-check", prefix)
        return False


async def check_topic(ctx: Context, principal: Principal, topic: str) -> tuple[str, str] | None:
    """None if `principal` may subscribe to `topic` (canonical: `canonical_topic`), else
    (error code, message)."""
    prefix, sep, entity = topic.partition(":")
    authorizer = TOPIC_AUTHORIZERS.get(prefix) if sep and entity else None
    if authorizer is None or prefix in RESERVED_TOPIC_PREFIXES:
        known = ", ".join(f"{p}:<id>" for p in sorted(TOPIC_AUTHORIZERS)) or "none yet"
        return ErrorCode.UNKNOWN_TOPIC, f"No such topic kind (known: {known})."
    if canonical_topic(topic) != topic:  # a caller that skipped canonicalization: never live
        return ErrorCode.UNKNOWN_TOPIC, "Malformed topic: write its id in canonical form."
    try:
        # A subscription is a read like an HTTP one: it spends the user's API budget.
        await ctx.limit(f"api:{principal.user_id}", ctx.settings.rate_limits.api, "API requests")
        allowed = await authorizer(ctx, principal, entity)
    except AppError as exc:
        body = error_body(exc)
        return body["code"], body["message"]
    except Exception:
        log.exception("topic authorizer %s failed", prefix)
        return ErrorCode.INTERNAL_ERROR, "Something went wrong."
    if not allowed:
        return ErrorCode.NOT_FOUND, "No such topic, or you may not see it."
    return None
