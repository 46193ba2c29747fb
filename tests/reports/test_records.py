"""RecordWriter: batched, non-blocking writes; hashes only when answers are not kept; retention."""

from __future__ import annotations

import asyncio
import hashlib
import time

import pytest

from aiguard.services.records import RecordWriter
from aiguard.store import Database
from tests.reports.conftest import make_policy, make_record

pytestmark = pytest.mark.anyio


async def count(db: Database) -> int:
    row = await db.fetchone("SELECT COUNT(*) AS n FROM aiguard_messages")
    assert row is not None
    return int(row["n"])


async def test_add_is_batched_off_the_hot_path_and_stop_flushes(db: Database) -> None:
    writer = RecordWriter(db, make_policy(record_flush_ms=60_000.0, record_batch_size=1000))
    await writer.start()
    recs = [make_record() for _ in range(50)]
    for rec in recs:
        writer.add(rec)  # synchronous: no I/O happens here
    assert writer.pending == 50
    assert await count(db) == 0  # nothing written before the interval or a full batch
    # still findable while queued, so a report right after the answer finds its message
    got = await writer.get(recs[0].message_id)
    assert got is not None and got["answer"] == recs[0].answer
    await writer.stop()
    assert await count(db) == 50
    assert writer.pending == 0 and writer.written == 50


async def test_background_flush_within_the_interval(db: Database) -> None:
    writer = RecordWriter(db, make_policy(record_flush_ms=20.0))
    await writer.start()
    try:
        rec = make_record()
        writer.add(rec)
        deadline = time.monotonic() + 5
        while await count(db) == 0:
            assert time.monotonic() < deadline, "record never flushed"
            await asyncio.sleep(0.01)
        row = await writer.get(rec.message_id)
        assert row is not None
        assert row["subject_id"] == rec.subject_id and row["streamed"] is False
        assert row["disclosure"] == rec.disclosure and row["screening"] == rec.screening
        assert row["answer"] == rec.answer
        assert row["answer_sha256"] == hashlib.sha256(rec.answer.encode()).hexdigest()
    finally:
        await writer.stop()


async def test_full_batch_flushes_without_waiting(db: Database) -> None:
    writer = RecordWriter(db, make_policy(record_flush_ms=60_000.0, record_batch_size=10))
    await writer.start()
    try:
        for _ in range(10):
            writer.add(make_record())
        deadline = time.monotonic() + 5
        while await count(db) < 10:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.01)
    finally:
        await writer.stop()


async def test_store_answers_false_keeps_only_the_hash(db: Database) -> None:
    writer = RecordWriter(db, make_policy(store_answers=False))
    await writer.start()
    rec = make_record(answer="secret answer text")
    writer.add(rec)
    queued = await writer.get(rec.message_id)
    assert queued is not None and queued["answer"] is None
    await writer.stop()
    row = await db.fetchone("SELECT answer, answer_sha256 FROM aiguard_messages")
    assert row == {
        "answer": None,
        "answer_sha256": hashlib.sha256(b"secret answer text").hexdigest(),
    }


async def test_overflow_drops_new_records_and_counts_them(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    writer = RecordWriter(
        db, make_policy(record_queue_max=5, record_batch_size=100, record_flush_ms=60_000.0)
    )
    first = [make_record() for _ in range(5)]
    for rec in [*first, make_record(), make_record()]:
        writer.add(rec)  # not started: nothing drains the queue
    assert writer.dropped == 2
    assert "queue full" in caplog.text
    await writer.start()
    await writer.stop()
    rows = await db.fetchall("SELECT message_id FROM aiguard_messages")
    assert {r["message_id"] for r in rows} == {r.message_id for r in first}


async def test_duplicate_message_ids_are_written_once(db: Database) -> None:
    writer = RecordWriter(db, make_policy())
    rec = make_record()
    writer.add(rec)
    await writer.flush()
    writer.add(rec)
    await writer.flush()
    assert await count(db) == 1


async def test_purge_deletes_records_past_retention(db: Database) -> None:
    writer = RecordWriter(db, make_policy(retention_days=30))
    now = time.time()
    old = make_record(created_at=now - 31 * 86400)
    fresh = make_record(created_at=now - 29 * 86400)
    writer.add(old)
    writer.add(fresh)
    await writer.flush()
    assert await writer.purge(now=now) == 1
    assert await writer.get(old.message_id) is None
    assert await writer.get(fresh.message_id) is not None


async def test_stop_logs_instead_of_raising_when_storage_fails(
    sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    from aiguard.store import open_database

    db = open_database(sqlite_url)
    writer = RecordWriter(db, make_policy(record_flush_ms=60_000.0))
    await writer.start()
    writer.add(make_record())
    await db.close()  # storage gone before shutdown finished
    await writer.stop()
    assert "could not write 1 message record(s) at shutdown" in caplog.text


async def test_add_stays_instant_while_the_database_is_locked(sqlite_url: str) -> None:
    import sqlite3

    from aiguard.store import open_database

    db = open_database(sqlite_url)
    writer = RecordWriter(db, make_policy(record_flush_ms=5.0, record_batch_size=10))
    await writer.start()
    blocker = sqlite3.connect(sqlite_url.removeprefix("sqlite:///"), isolation_level=None)
    try:
        blocker.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        t0 = time.perf_counter()
        for _ in range(200):
            writer.add(make_record())
            await asyncio.sleep(0)  # let the flush task try (and wait on the lock)
        elapsed = time.perf_counter() - t0
        assert elapsed < 0.5, f"add() waited on storage: {elapsed:.3f} s for 200 answers"
        await asyncio.sleep(0.1)  # twenty flush intervals: the writer is stuck on the lock
        assert writer.written == 0 and writer.pending == 200
        blocker.execute("ROLLBACK")
        deadline = time.monotonic() + 10
        while await count(db) < 200:
            assert time.monotonic() < deadline, "records not written after the lock was released"
            await asyncio.sleep(0.02)
    finally:
        blocker.close()
        await writer.stop()
        await db.close()
