"""CPU-heavy media work (decoding, resizing, encoding, transcoding) off the server's event loop.

Threads are not enough: Pillow and PyAV release the GIL inside their C loops but hold it in
between, so a thread busy with a 12-megapixel photo still delays every socket of the gateway.
The work runs in a small pool of worker processes (started on first use with `spawn`: forking a
process that runs an event loop and threads is unsafe); a decoder crash there costs a retry of
the job, not the server. `media.cpu_workers = 0` runs it in threads instead.
"""

from __future__ import annotations

import asyncio
import functools
import multiprocessing
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

T = TypeVar("T")
_pool: ProcessPoolExecutor | None = None
_workers = 2


def configure(workers: int) -> None:
    """Worker processes for media work in this process (0: threads)."""
    global _workers
    _workers = max(0, workers)


async def run_cpu(fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """`fn(*args, **kwargs)` in a worker process (a module-level function with picklable
    arguments and result); its exceptions are raised here."""
    global _pool
    call = functools.partial(fn, *args, **kwargs)
    if _workers == 0:
        return await asyncio.to_thread(call)
    if _pool is None:
        _pool = ProcessPoolExecutor(_workers, mp_context=multiprocessing.get_context("spawn"))
    try:
        return await asyncio.get_running_loop().run_in_executor(_pool, call)
    except BrokenProcessPool:
        _pool = None  # a worker died (e.g. the OOM killer): a fresh pool next time
        raise
