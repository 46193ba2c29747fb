"""OutboxWorker against both backends with in-process sinks: retries, dead letters, leases."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from aiguard.policy import Policy
from aiguard.policy.prompts import Catalogue
from aiguard.services.outbox import OutboxWorker, backoff, retry
from aiguard.services.records import RecordWriter
from aiguard.services.reports import Report, ReportService
from aiguard.services.sinks import DeliveryError
from aiguard.store import Database
from tests.reports.conftest import identity, make_policy, make_record

pytestmark = pytest.mark.anyio


class ListSink:
    """Records deliveries; fails the first ``fail`` calls."""

    name = "jsonl"  # stands in for a configured sink name

    def __init__(self, fail: int = 0, delay: float = 0.0) -> None:
        self.fail = fail
        self.delay = delay
        self.calls = 0
        self.got: list[str] = []

    async def deliver(self, key: str, body: bytes) -> None:
        self.calls += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.calls <= self.fail:
            raise DeliveryError("HTTP 503 from webhook")
        self.got.append(key)

    async def aclose(self) -> None:
        return None


def sink_policy(tmp_path: Any, **kw: Any) -> Policy:
    return make_policy(jsonl_path=tmp_path / "unused.jsonl", rate_limit=1000, **kw)


async def submit_many(db: Database, policy: Policy, n: int) -> list[Report]:
    records = RecordWriter(db, policy)
    svc = ReportService(db, policy, Catalogue(), records)
    out = []
    for _ in range(n):
        rec = make_record()
        records.add(rec)
        out.append(await svc.submit(identity(), rec.message_id, "inaccurate", "", ""))
    return out


async def outbox_rows(db: Database) -> list[dict[str, Any]]:
    return await db.fetchall(
        "SELECT report_id, state, attempts, last_error, lease_owner FROM aiguard_outbox ORDER BY id"
    )


async def test_delivers_once_and_marks_forwarded(db: Database, tmp_path: Any) -> None:
    policy = sink_policy(tmp_path)
    [report] = await submit_many(db, policy, 1)
    sink = ListSink()
    worker = OutboxWorker(db, policy, [sink])
    assert await worker.run_once() == 1
    assert await worker.run_once() == 0
    assert sink.got == [f"{report.id}.1"]
    [row] = await outbox_rows(db)
    assert row["state"] == "delivered" and row["attempts"] == 1 and row["lease_owner"] is None
    status = await db.fetchone("SELECT status FROM aiguard_reports WHERE id = ?", report.id)
    assert status == {"status": "forwarded"}


async def test_failures_back_off_then_deliver(db: Database, tmp_path: Any) -> None:
    policy = sink_policy(tmp_path, backoff_base_seconds=0.2, backoff_max_seconds=0.2)
    await submit_many(db, policy, 1)
    sink = ListSink(fail=2)
    worker = OutboxWorker(db, policy, [sink])
    assert await worker.run_once() == 1
    [row] = await outbox_rows(db)
    assert (row["state"], row["attempts"], row["last_error"]) == (
        "pending",
        1,
        "HTTP 503 from webhook",
    )
    assert await worker.run_once() == 0  # not due yet: backoff
    await asyncio.sleep(0.25)
    assert await worker.run_once() == 1
    await asyncio.sleep(0.25)
    assert await worker.run_once() == 1
    assert len(sink.got) == 1 and sink.calls == 3
    assert (await outbox_rows(db))[0]["state"] == "delivered"


async def test_dead_letter_after_max_attempts_and_cli_retry(db: Database, tmp_path: Any) -> None:
    policy = sink_policy(tmp_path, max_attempts=2, backoff_base_seconds=0.01)
    await submit_many(db, policy, 1)
    sink = ListSink(fail=10)
    worker = OutboxWorker(db, policy, [sink])
    await worker.run_once()
    await asyncio.sleep(0.03)
    await worker.run_once()
    [row] = await outbox_rows(db)
    assert row["state"] == "dead" and row["attempts"] == 2 and worker.dead == 1
    await asyncio.sleep(0.03)
    assert await worker.run_once() == 0  # dead rows are never claimed
    assert await retry(db) == 1
    sink.fail = 0
    assert await worker.run_once() == 1
    assert (await outbox_rows(db))[0]["state"] == "delivered"


async def test_expired_lease_is_taken_over(db: Database, tmp_path: Any) -> None:
    policy = sink_policy(tmp_path, lease_seconds=2.0)
    [report] = await submit_many(db, policy, 1)
    dead_worker = OutboxWorker(db, policy, [ListSink()], owner="crashed")
    claimed = await dead_worker.claim()  # claims, then "dies" without recording an outcome
    assert [c.report_id for c in claimed] == [report.id]
    sink = ListSink()
    live = OutboxWorker(db, policy, [sink], owner="live")
    assert await live.run_once() == 0  # the lease still holds
    assert await live.run_once(now=time.time() + 2.5) == 1
    assert sink.got == [f"{report.id}.1"]
    [row] = await outbox_rows(db)
    assert row["attempts"] == 2 and row["state"] == "delivered"


async def test_concurrent_workers_deliver_each_row_once(db: Database, tmp_path: Any) -> None:
    policy = sink_policy(tmp_path, outbox_batch=3)
    reports = await submit_many(db, policy, 20)
    sinks = [ListSink(delay=0.005) for _ in range(3)]
    workers = [OutboxWorker(db, policy, [s]) for s in sinks]

    async def drain(w: OutboxWorker) -> None:
        while await w.run_once():
            pass

    await asyncio.gather(*(drain(w) for w in workers))
    keys = [k for s in sinks for k in s.got]
    assert sorted(keys) == sorted(f"{r.id}.1" for r in reports)
    assert len(keys) == len(set(keys))


async def test_worker_task_wakes_on_submit_and_stops_cleanly(db: Database, tmp_path: Any) -> None:
    policy = sink_policy(tmp_path, poll_interval_seconds=30.0)
    sink = ListSink()
    worker = OutboxWorker(db, policy, [sink])
    await worker.start()
    records = RecordWriter(db, policy)
    svc = ReportService(db, policy, Catalogue(), records, notify=worker.wake)
    try:
        await asyncio.sleep(0.05)  # the first (empty) round is done; next poll is 30 s away
        rec = make_record()
        records.add(rec)
        report = await svc.submit(identity(), rec.message_id, "harmful", "", "")
        deadline = time.monotonic() + 5
        while not sink.got:
            assert time.monotonic() < deadline, "wake() did not trigger a delivery"
            await asyncio.sleep(0.01)
        assert sink.got == [f"{report.id}.1"]
    finally:
        await worker.stop()


def test_backoff_grows_exponentially_with_jitter_and_cap() -> None:
    lo = [backoff(a, 1.0, 60.0, rng=lambda: 0.0) for a in range(1, 9)]
    hi = [backoff(a, 1.0, 60.0, rng=lambda: 1.0) for a in range(1, 9)]
    assert lo == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    assert hi == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0]
    assert backoff(1, 1.0, 60.0, retry_after=30.0, rng=lambda: 0.0) == 30.0
    assert backoff(1, 1.0, 60.0, retry_after=9999.0, rng=lambda: 0.0) == 60.0
    assert backoff(10_000, 1.0, 60.0, rng=lambda: 1.0) == 60.0
