"""The thread limit every screen shares for CPU-bound or blocking work.

A tiny module without aiguard imports, so any screen can use it without import cycles::

    from aiguard.screens.cpu import run_cpu

    spans = await run_cpu(self._find_sync, text)

Why shared: threads running Python code take turns on the GIL (a waiting thread gets it after
up to ``sys.getswitchinterval()``, 5 ms), so more busy threads than cores only add latency. One
limiter per event loop caps the CPU work of all screens of all requests together.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TypeVar, TypeVarTuple

import anyio
import anyio.to_thread
from anyio.lowlevel import RunVar

__all__ = ["cpu_limiter", "run_cpu"]

T = TypeVar("T")
Ts = TypeVarTuple("Ts")

# One limiter per event loop (RunVar): a limiter is bound to the loop that created it.
_cpu_limiter: RunVar[anyio.CapacityLimiter] = RunVar("aiguard_cpu_limiter")


def cpu_limiter() -> anyio.CapacityLimiter:
    """The limiter every screen shares for CPU-bound work: at most one thread per core (max 4).

    Call from inside the event loop.
    """
    try:
        return _cpu_limiter.get()
    except LookupError:
        limiter = anyio.CapacityLimiter(max(1, min(4, os.cpu_count() or 1)))
        _cpu_limiter.set(limiter)
        return limiter


async def run_cpu(func: Callable[[*Ts], T], *args: *Ts) -> T:
    """Run ``func(*args)`` in a worker thread under :func:`cpu_limiter`.

    Abandoned on cancellation so the pipeline's timeout fires on time (the thread finishes in
    the background; keep CPU work per call short and bounded).
    """
    return await anyio.to_thread.run_sync(
        func, *args, limiter=cpu_limiter(), abandon_on_cancel=True
    )
