"""The command models of direct messaging: one pydantic model per action, validated once at the
edge and shared by both transports, so the two cannot drift apart again.

- HTTP passes them to `@endpoint(body=...)` / `@endpoint(query=...)`; the id of the entity the
  action targets (conversation, message, product) is in the URL path.
- The gateway passes them to `@call(params=...)`. A call has no path, so for an action on one
  conversation / message / product its params are the command plus the target's id: a class
  with no fields of its own, `class SendParams(SendIn, ConversationRef)` (the address fields
  come first). Actions without a body take the address model (`ConversationRef`, ...) alone.

Body commands (`Command`) refuse unknown fields; query commands (`Query`: lists, search, the
scope of a delete) ignore them, as query strings conventionally do, and the gateway accepts the
same (its params for them say `extra="ignore"` again, over the address's refusal). No text may
hold NUL (PostgreSQL text cannot): the HTTP edge refuses it before validation, these models
refuse it for the gateway.

The class names of bodies are the OpenAPI component names clients generate code from
(`SendIn`, `MuteIn`, ...), and their docstrings and field descriptions are the documentation:
change them only as an API change.
"""

from __future__ import annotations

import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from server.domain.messaging.content import NONCE_MAX_CHARS
from server.pagination import PageQuery

MAX_TEXT = 100_000  # a sanity bound; the real limit is messaging.max_message_chars (422)


class _Text(BaseModel):
    """Refuses NUL in every text field."""

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        if isinstance(value, str) and "\x00" in value:
            raise ValueError("may not contain NUL characters")
        return value


class Command(_Text):
    """A request body (or gateway params): unknown fields are refused."""

    model_config = ConfigDict(extra="forbid")


class Query(_Text):
    """A query string (or gateway params): unknown keys are ignored."""

    model_config = ConfigDict(extra="ignore")


# Addresses: the target of an action, for the gateway (HTTP has it in the path) -------------


class ConversationRef(Command):
    conversation_id: uuid.UUID


class MessageRef(Command):
    message_id: uuid.UUID


class ProductRef(Command):
    product_id: uuid.UUID


# Conversations ----------------------------------------------------------------------------


class CreateConversationIn(Command):
    """Whom to talk to: exactly one of `user_id` or `username`."""

    user_id: uuid.UUID | None = Field(None, description="The other user (or give username)")
    username: str | None = Field(None, min_length=1, max_length=64)

    @model_validator(mode="after")
    def _one_of(self) -> CreateConversationIn:
        if (self.user_id is None) == (self.username is None):
            raise ValueError("give exactly one of user_id or username")
        return self


class ConversationListQuery(PageQuery, Query):
    """A page of your conversations."""


class MuteIn(Command):
    """How long to mute (default: until unmuted)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"duration_s": 28800}, {}]})

    duration_s: int | None = Field(
        None, ge=60, le=10 * 365 * 86400, description="Mute for this long (default: until unmuted)"
    )


class UpToIn(Command):
    """How far: a message or a seq of the conversation (default: the latest)."""

    message_id: uuid.UUID | None = Field(None, description="Up to this message")
    seq: int | None = Field(None, ge=0, description="Up to this seq (default: the latest)")


# Messages ---------------------------------------------------------------------------------


class MessageListQuery(PageQuery, Query):
    after_seq: int | None = Field(
        None, ge=0, description="Catch up: the messages after this seq, oldest first"
    )


class SendIn(Command):
    """A new message: text (a link message when it holds a URL), optionally a reply, or about a
    product. Send a `nonce` to make retries safe."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"content": "Is the red bike still available?", "nonce": "c-5f0e2a"},
                {
                    "content": "Yes, come by on Saturday.",
                    "reply_to_message_id": "0192d1e4-7c3a-7b1e-9f2a-4c8d5e6f7a8b",
                    "nonce": "c-5f0e2b",
                },
            ]
        }
    )

    content: str = Field("", max_length=MAX_TEXT, description="Optional with media (a caption)")
    message_type: Literal["text", "link", "image", "video", "product_context"] | None = Field(
        None,
        description="text or link (default: link when the text holds a URL); image or video "
        "with media_ids (default: image)",
    )
    media_ids: list[uuid.UUID] | None = Field(
        None,
        max_length=10,
        description="Your own uploads (POST /api/media), ready: makes it an image or video message",
    )
    reply_to_message_id: uuid.UUID | None = None
    product_id: uuid.UUID | None = Field(None, description="Makes it a product-context message")
    nonce: str | None = Field(
        None,
        min_length=1,
        max_length=NONCE_MAX_CHARS,
        description="Client idempotency key: a resend with it returns the original message",
    )


class ForwardIn(Command):
    """Where to forward the message: one of your conversations."""

    conversation_id: uuid.UUID
    nonce: str | None = Field(None, min_length=1, max_length=NONCE_MAX_CHARS)


class EditIn(Command):
    """The new text of the message."""

    content: str = Field(max_length=MAX_TEXT)


class DeleteQuery(Query):
    scope: Literal["self", "everyone"] = Field(
        "self", description="self: hide it for you; everyone: the sender retracts it"
    )


class ReactIn(Command):
    """The reaction to add."""

    emoji: str = Field(min_length=1, max_length=64, description="An emoji or a :shortcode:")


class SearchQuery(PageQuery, Query):
    q: str = Field(min_length=1, max_length=200)
    conversation_id: uuid.UUID | None = None


# Product context --------------------------------------------------------------------------


class ContactIn(Command):
    """The first message to the seller (default: a standard question)."""

    text: str | None = Field(
        None,
        max_length=MAX_TEXT,
        description="Your message (default: \"Hi, I'm interested in <name>. Is this still "
        'available?")',
    )
    nonce: str | None = Field(None, min_length=1, max_length=NONCE_MAX_CHARS)
