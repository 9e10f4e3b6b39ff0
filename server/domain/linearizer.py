"""`Linearizer`: serialise work per key within this process (after Synapse's primitive).

    async with ctx.linearizer.queue(("conversation", conversation_id)):
        async with ctx.db.transaction() as tx:
            ...  # writes, ctx.events.to_users(...)
        # the events are published when the transaction block exits, still in the slot

Entries for a key are granted in arrival order (asyncio.Lock is FIFO); the lock of an idle key
is dropped (weak references), so memory follows the keys in use, not every key ever seen.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator, Hashable
from contextlib import asynccontextmanager


class Linearizer:
    def __init__(self, name: str) -> None:
        self.name = name
        self._locks: weakref.WeakValueDictionary[Hashable, asyncio.Lock] = (
            weakref.WeakValueDictionary()
        )

    @asynccontextmanager
    async def queue(self, key: Hashable) -> AsyncIterator[None]:
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
        async with lock:
            yield
