"""Message records: one row per guarded answer, written in batches off the hot path.

The middleware calls ``RecordWriter.add(record)`` after each answer. ``add`` only appends to an
in-memory queue (no I/O, no await); a background task writes the queue in one transaction per
batch, every ``record_flush_ms`` or as soon as ``record_batch_size`` records wait.

Overflow: the queue holds at most ``record_queue_max`` records. When storage is slower than answer
traffic for that long, *new* records are dropped and counted (``dropped``) and a warning is
logged, rather than slowing answers down: a storage slowdown must not become a chat outage. Records
already queued keep their order and are retried when a write fails.

``add`` must be called from the event loop thread that runs ``start()`` (it is not thread-safe).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import time
from collections import OrderedDict
from dataclasses import asdict
from typing import Any

from aiguard.policy.models import Policy
from aiguard.services.message import MessageRecord
from aiguard.store.base import Database, Migration, Row

log = logging.getLogger("aiguard.records")

MIGRATIONS: list[Migration] = [
    Migration(
        component="records",
        version=1,
        name="message records",
        sqlite="""
CREATE TABLE aiguard_messages (
  message_id TEXT PRIMARY KEY,
  conversation_id TEXT NOT NULL,
  subject_id TEXT NOT NULL,
  route TEXT NOT NULL,
  model TEXT,
  locale TEXT NOT NULL,
  status INTEGER NOT NULL,
  streamed INTEGER NOT NULL,
  disclosure TEXT,
  verdict TEXT NOT NULL,
  screening TEXT NOT NULL,
  answer TEXT,
  answer_sha256 TEXT NOT NULL,
  created_at REAL NOT NULL
);
CREATE INDEX aiguard_messages_created ON aiguard_messages (created_at)
""",
        postgres="""
CREATE TABLE aiguard_messages (
  message_id TEXT PRIMARY KEY,
  conversation_id TEXT NOT NULL,
  subject_id TEXT NOT NULL,
  route TEXT NOT NULL,
  model TEXT,
  locale TEXT NOT NULL,
  status INTEGER NOT NULL,
  streamed INTEGER NOT NULL,
  disclosure TEXT,
  verdict TEXT NOT NULL,
  screening TEXT NOT NULL,
  answer TEXT,
  answer_sha256 TEXT NOT NULL,
  created_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX aiguard_messages_created ON aiguard_messages (created_at)
""",
    )
]

_COLUMNS = (
    "message_id, conversation_id, subject_id, route, model, locale, status, streamed,"
    " disclosure, verdict, screening, answer, answer_sha256, created_at"
)
_NCOL = 14
# SQLite allows 32766 bound variables per statement, PostgreSQL 32767: stay well below both.
_ROWS_PER_INSERT = 500


def answer_sha256(answer: str) -> str:
    return hashlib.sha256(answer.encode("utf-8")).hexdigest()


def _row_args(rec: MessageRecord, store_answers: bool) -> tuple[Any, ...]:
    return (
        rec.message_id,
        rec.conversation_id,
        rec.subject_id,
        rec.route,
        rec.model,
        rec.locale,
        int(rec.status),
        1 if rec.streamed else 0,
        json.dumps(rec.disclosure, ensure_ascii=False) if rec.disclosure is not None else None,
        rec.verdict,
        json.dumps(rec.screening, ensure_ascii=False, default=str),
        rec.answer if store_answers else None,
        answer_sha256(rec.answer),
        float(rec.created_at or time.time()),
    )


def record_to_json(rec: MessageRecord, *, store_answers: bool) -> dict[str, Any]:
    """The JSON shape of a message record (what reports carry and the provider sees)."""
    out = asdict(rec)
    out["answer_sha256"] = answer_sha256(rec.answer)
    if not store_answers:
        out["answer"] = None
    return out


def row_to_json(row: Row) -> dict[str, Any]:
    return {
        "message_id": row["message_id"],
        "conversation_id": row["conversation_id"],
        "subject_id": row["subject_id"],
        "route": row["route"],
        "model": row["model"],
        "locale": row["locale"],
        "status": int(row["status"]),
        "streamed": bool(row["streamed"]),
        "disclosure": json.loads(row["disclosure"]) if row["disclosure"] else None,
        "verdict": row["verdict"],
        "screening": json.loads(row["screening"]) if row["screening"] else {},
        "answer": row["answer"],
        "answer_sha256": row["answer_sha256"],
        "created_at": float(row["created_at"]),
    }


async def purge_messages(db: Database, cutoff: float) -> int:
    """Delete message records created before ``cutoff`` (epoch seconds); return how many."""
    async with db.transaction() as tx:
        return await tx.execute("DELETE FROM aiguard_messages WHERE created_at < ?", cutoff)


class RecordWriter:
    """Batches message records into the database; see the module docstring for the guarantees."""

    def __init__(self, db: Database, policy: Policy) -> None:
        self._db = db
        self._store_answers = policy.reports.store_answers
        self._retention = policy.reports.retention_days * 86400.0
        self._batch = policy.reports.record_batch_size
        self._interval = policy.reports.record_flush_ms / 1000.0
        self._max = policy.reports.record_queue_max
        # queued and being-written records stay findable by id until committed, so a report
        # arriving within the flush interval still finds its message
        self._queue: OrderedDict[str, MessageRecord] = OrderedDict()
        self._inflight: dict[str, MessageRecord] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._write_lock = asyncio.Lock()
        self._stopping = False
        self.dropped = 0
        """Records dropped because the queue was full (since start)."""
        self.written = 0
        """Records committed (since start)."""

    # --- hot path ---------------------------------------------------------------------------
    def add(self, record: MessageRecord) -> None:
        """Queue one record; never blocks, never raises on storage trouble."""
        if len(self._queue) >= self._max:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.warning(
                    "message record queue full (%d): dropped %d record(s) so far",
                    self._max,
                    self.dropped,
                )
            return
        self._queue[record.message_id] = record
        if len(self._queue) >= self._batch:
            self._wake.set()

    # --- lifecycle --------------------------------------------------------------------------
    async def start(self) -> None:
        await self._db.migrate(MIGRATIONS)
        if self._task is None:
            self._stopping = False
            self._task = asyncio.create_task(self._run(), name="aiguard-records")

    async def stop(self) -> None:
        """Stop the background task and write everything still queued (logged, not raised, if
        the database fails at that point)."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            # let the task finish its current write instead of cancelling it mid-transaction
            task, self._task = self._task, None
            with contextlib.suppress(Exception):
                await task
        try:
            await self.flush()
        except Exception:
            # shutdown must go on (the runtime still closes the database); say what is lost
            log.exception("could not write %d message record(s) at shutdown", self.pending)

    async def flush(self) -> int:
        """Write every queued record now; return how many were written. Raises on store errors
        (the records stay queued)."""
        total = 0
        while self._queue:
            total += await self._write_batch()
        return total

    @property
    def pending(self) -> int:
        return len(self._queue) + len(self._inflight)

    async def _run(self) -> None:
        failures = 0
        delay = self._interval
        while not self._stopping:
            if failures:  # backing off: a full queue must not turn each answer into a retry
                await self._backoff(delay)
            else:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), delay)
            self._wake.clear()
            if self._stopping:
                break
            try:
                while self._queue:
                    await self._write_batch()
                failures, delay = 0, self._interval
            except Exception:
                # keep the records and back off; the log says why (store errors carry details)
                failures += 1
                delay = min(5.0, self._interval * 2**failures)
                log.exception("writing message records failed (%d in a row)", failures)

    async def _backoff(self, delay: float) -> None:
        """Sleep ``delay`` seconds; only ``stop()`` cuts it short (answers' wake-ups do not)."""
        deadline = asyncio.get_running_loop().time() + delay
        while not self._stopping:
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), remaining)
            self._wake.clear()

    async def _write_batch(self) -> int:
        async with self._write_lock:
            batch: list[MessageRecord] = []
            while self._queue and len(batch) < self._batch:
                _, rec = self._queue.popitem(last=False)
                batch.append(rec)
            if not batch:
                return 0
            for rec in batch:
                self._inflight[rec.message_id] = rec
            try:
                async with self._db.transaction() as tx:
                    for i in range(0, len(batch), _ROWS_PER_INSERT):
                        chunk = batch[i : i + _ROWS_PER_INSERT]
                        values = ",".join(["(" + ",".join("?" * _NCOL) + ")"] * len(chunk))
                        args: list[Any] = []
                        for rec in chunk:
                            args.extend(_row_args(rec, self._store_answers))
                        await tx.execute(
                            f"INSERT INTO aiguard_messages ({_COLUMNS}) VALUES {values}"  # noqa: S608
                            " ON CONFLICT (message_id) DO NOTHING",
                            *args,
                        )
            except BaseException:
                # put the batch back in front, in order, so nothing is lost on a failed write
                restored: OrderedDict[str, MessageRecord] = OrderedDict(
                    (r.message_id, r) for r in batch
                )
                restored.update(self._queue)
                self._queue = restored
                raise
            finally:
                for rec in batch:
                    self._inflight.pop(rec.message_id, None)
            self.written += len(batch)
            return len(batch)

    # --- reads ------------------------------------------------------------------------------
    def queued(self, message_id: str) -> MessageRecord | None:
        """The record if it is still in memory (queued or being written)."""
        return self._queue.get(message_id) or self._inflight.get(message_id)

    async def get(self, message_id: str) -> dict[str, Any] | None:
        """A record as JSON (``answer`` is ``None`` when answers are not stored), or ``None``."""
        rec = self.queued(message_id)
        if rec is not None:
            return record_to_json(rec, store_answers=self._store_answers)
        row = await self._db.fetchone(
            f"SELECT {_COLUMNS} FROM aiguard_messages WHERE message_id = ?",  # noqa: S608
            message_id,
        )
        return row_to_json(row) if row is not None else None

    async def purge(self, now: float | None = None) -> int:
        """Delete records older than ``retention_days``; return how many were deleted."""
        cutoff = (time.time() if now is None else now) - self._retention
        return await purge_messages(self._db, cutoff)


# --- data-subject rights (``aiguard subject export|erase``) ---------------------------------
async def subject_export(db: Database, subject_id: str) -> dict[str, Any]:
    """Every message record of one (pseudonymous) subject, oldest first, as JSON."""
    await db.migrate(MIGRATIONS)  # a database that never ran ``db upgrade`` holds nothing
    rows = await db.fetchall(
        f"SELECT {_COLUMNS} FROM aiguard_messages"  # noqa: S608
        " WHERE subject_id = ? ORDER BY created_at, message_id",
        subject_id,
    )
    return {"messages": [row_to_json(r) for r in rows]}


async def subject_erase(db: Database, subject_id: str) -> int:
    """Delete every message record of the subject; return how many (0 when run again).

    Records are deleted, not anonymised: a record is the subject's conversation, nothing in it
    is useful without the person. Reports keep their own snapshot and are erased by
    ``reports.subject_erase``. A record still queued in a running process's ``RecordWriter``
    (at most ``record_flush_ms`` old) is not reachable from here.
    """
    await db.migrate(MIGRATIONS)
    async with db.transaction() as tx:
        return await tx.execute("DELETE FROM aiguard_messages WHERE subject_id = ?", subject_id)
