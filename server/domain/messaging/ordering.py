"""The order of a conversation's writes, and so of its events.

A message gets `seq`, the next number of its conversation, under the conversation's row lock,
and its `created_at` from the database clock under that lock; lists are ordered by `seq`. Every
write to a conversation also runs in this node's slot of that conversation
(`conversation_lock`, a `Linearizer` queue), held from before BEGIN until the events of the
write are published (the event sink publishes when the transaction block exits), so on a node
the per-user event order (the bus `s`) is the commit order. Across nodes, two senders racing in
one conversation can see their events published in either order within a sub-millisecond
window; every message event carries `seq`, so a client places each message by it.
"""

from __future__ import annotations

import uuid
from contextlib import AbstractAsyncContextManager
from typing import Any

from server.domain.access import NO_MESSAGE
from server.domain.context import Context
from server.errors import NotFound
from server.store import messaging as store


def conversation_lock(ctx: Context, key: Any) -> AbstractAsyncContextManager[None]:
    """This node's slot for one conversation (its id; `("pair", low, high)` while it may not
    exist yet). Enter it outside the transaction and leave it after the block exits."""
    return ctx.linearizer.queue(key)


async def conversation_of_message(ctx: Context, message_id: uuid.UUID) -> uuid.UUID:
    """The conversation of a message, to take its slot before the transaction (who may act on
    the message is decided inside it, by `access_message`)."""
    conversation_id = await store.conversation_of(ctx.db, message_id)
    if conversation_id is None:
        raise NotFound(NO_MESSAGE)
    return conversation_id
