"""Regressions found in review of records and reports: each failed before its fix."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from aiguard.errors import StoreError
from aiguard.services.records import RecordWriter
from tests.reports.conftest import make_policy, make_record

pytestmark = pytest.mark.anyio


class _DownDB:
    dialect = "sqlite"

    def __init__(self) -> None:
        self.attempts = 0

    @contextlib.asynccontextmanager
    async def transaction(self, *, exclusive: bool = False) -> AsyncIterator[Any]:
        self.attempts += 1
        raise StoreError("down")
        yield  # pragma: no cover

    async def migrate(self, m: Any) -> list[Any]:
        return []


async def test_record_writer_backoff_is_bypassed_by_traffic() -> None:
    """While the store is down, every add() past record_batch_size wakes the writer at once,
    so the exponential back-off never applies: one failing write (and one logged traceback)
    per answer instead of a few per second."""
    policy = make_policy(record_batch_size=1, record_flush_ms=50.0)
    fake = _DownDB()
    w = RecordWriter(fake, policy)  # type: ignore[arg-type]
    await w.start()
    for _ in range(200):  # 200 answers over ~1 s
        w.add(make_record())
        await asyncio.sleep(0.005)
    w._stopping = True
    w._wake.set()
    await asyncio.sleep(0.01)
    # with backoff 50ms,100,200,400,800 (cap 5 s) ~1 s of outage allows ~5 attempts
    assert fake.attempts <= 10, f"{fake.attempts} write attempts in ~1 s of outage"
