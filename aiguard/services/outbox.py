"""The outbox worker: delivers report events from ``aiguard_outbox`` to the configured sinks.

Each round claims up to ``outbox_batch`` due rows by writing a lease (owner + expiry) on them in
one short transaction (PostgreSQL: ``SELECT ... FOR UPDATE SKIP LOCKED``, so replicas never claim
the same row; SQLite: ``BEGIN IMMEDIATE`` serialises claimers). The rows are delivered
concurrently *outside* any transaction, then all outcomes are recorded in one transaction:

* delivered: ``state = 'delivered'``, and the report moves from received to forwarded;
* failed: ``next_attempt_at = now + backoff`` (exponential, with jitter, honouring a
  ``Retry-After`` hint), or ``state = 'dead'`` once ``attempts`` reaches ``max_attempts``.

Attempts are counted at claim time, so a row whose delivery keeps killing its worker also ends
up dead. A worker that dies holding a lease loses it when ``lease_until`` passes; each delivery is
cut off at half the lease so a live worker never overruns its own. Between replicas a row is
therefore delivered once, except when a worker dies after the receiver accepted and before the
outcome was recorded: then it is delivered again with the same ``Idempotency-Key``.

The worker also purges expired records and reports every ``purge_interval_seconds``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from aiguard.errors import ConfigError
from aiguard.policy.models import Policy
from aiguard.services import records, reports
from aiguard.services.sinks import DeliveryError, ReportSink
from aiguard.store.base import Database, Tx

log = logging.getLogger("aiguard.outbox")

MIGRATIONS = reports.MIGRATIONS  # the outbox tables belong to the "reports" component

# only placeholders and a fixed locking clause are formatted in: no values ever are
_CLAIM_SQL = (
    "SELECT o.id, o.sink, o.idempotency_key, o.report_id, o.revision, o.attempts, e.payload"
    " FROM aiguard_outbox o JOIN aiguard_report_events e ON e.id = o.event_id"
    " WHERE o.state = 'pending' AND o.next_attempt_at <= ?"
    " AND (o.lease_until IS NULL OR o.lease_until < ?)"
    " AND o.sink IN ({marks}) ORDER BY o.id LIMIT ?{lock}"
)
_LEASE_SQL = (
    "UPDATE aiguard_outbox SET lease_owner = ?, lease_until = ?, attempts = attempts + 1,"
    " updated_at = ? WHERE id IN ({marks})"
)
_DELIVERED_SQL = (
    "UPDATE aiguard_outbox SET state = 'delivered', delivered_at = ?, lease_owner = NULL,"
    " lease_until = NULL, last_error = NULL, updated_at = ?"
    " WHERE lease_owner = ? AND id IN ({marks})"
)
# a report is forwarded once a delivery of its *current* revision succeeded (an update made
# while an older revision was in flight keeps it "received")
_FORWARDED_SQL = (
    "UPDATE aiguard_reports SET status = 'forwarded', forwarded_at = ?"
    " WHERE status = 'received' AND id IN ({marks}) AND EXISTS (SELECT 1 FROM aiguard_outbox o"
    " WHERE o.report_id = aiguard_reports.id AND o.revision = aiguard_reports.revision"
    " AND o.state = 'delivered')"
)
_RETRY_SQL = (
    "UPDATE aiguard_outbox SET state = 'pending', attempts = 0, next_attempt_at = ?,"
    " lease_owner = NULL, lease_until = NULL, updated_at = ? WHERE "
)


def backoff(
    attempt: int,
    base: float,
    cap: float,
    *,
    retry_after: float | None = None,
    rng: Any = random.random,
) -> float:
    """Delay before retry number ``attempt`` (1-based): ``base * 2**(attempt-1)`` capped, then
    "equal jitter" (between half and all of it) so failed rows from one outage spread out."""
    delay = min(cap, base * 2 ** min(attempt - 1, 60))
    delay = delay / 2 + rng() * delay / 2
    if retry_after is not None:
        delay = max(delay, min(cap, retry_after))
    return float(delay)


@dataclass(frozen=True, slots=True)
class Claimed:
    id: int
    sink: str
    key: str
    report_id: str
    revision: int
    attempts: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class Outcome:
    row: Claimed
    error: str | None
    retry_after: float | None = None


async def purge_expired(db: Database, policy: Policy, now: float | None = None) -> dict[str, int]:
    """Delete message records and finished reports older than ``retention_days``."""
    cutoff = (time.time() if now is None else now) - policy.reports.retention_days * 86400.0
    return {
        "messages": await records.purge_messages(db, cutoff),
        "reports": await reports.purge_reports(db, cutoff),
    }


class OutboxWorker:
    """Claims due outbox rows and delivers them. Run several (processes or replicas) at will."""

    def __init__(
        self,
        db: Database,
        policy: Policy,
        sinks: Sequence[ReportSink],
        *,
        owner: str | None = None,
    ) -> None:
        self._db = db
        self._policy = policy
        self._rp = policy.reports
        self._sinks = {s.name: s for s in sinks}
        if len(self._sinks) != len(sinks):
            raise ConfigError("two report sinks share a name")
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._next_purge = 0.0
        self.delivered = 0
        self.failed = 0
        self.dead = 0

    def wake(self) -> None:
        """Look for due rows now (called after a report is accepted in this process)."""
        self._wake.set()

    async def start(self) -> None:
        await self._db.migrate([*records.MIGRATIONS, *reports.MIGRATIONS])
        if self._task is None:
            self._stopping = False
            # first purge a little after start, not in the middle of everyone's start-up
            self._next_purge = time.time() + min(60.0, self._rp.purge_interval_seconds)
            self._task = asyncio.create_task(self._run(), name="aiguard-outbox")

    async def stop(self, grace: float | None = None) -> None:
        """Finish the round in progress (at most ``grace`` seconds, default half the lease) and
        close the sinks. Rows of an unfinished round return to any worker when their lease ends."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            task, self._task = self._task, None
            try:
                await asyncio.wait_for(task, grace or self._rp.lease_seconds / 2)
            except TimeoutError:
                log.warning("outbox worker stopped mid-delivery; leases will expire")
        for sink in self._sinks.values():
            with contextlib.suppress(Exception):
                await sink.aclose()

    async def _run(self) -> None:
        failures = 0
        while not self._stopping:
            full = False
            try:
                n = await self.run_once()
                full = n >= self._rp.outbox_batch
                if time.time() >= self._next_purge:
                    self._next_purge = time.time() + self._rp.purge_interval_seconds
                    counts = await purge_expired(self._db, self._policy)
                    if any(counts.values()):
                        log.info("purged expired %s", counts)
                failures = 0
            except Exception:
                failures += 1
                log.exception("outbox round failed (%d in a row)", failures)
            if full and not failures:
                continue  # more may be due right now
            delay = self._rp.poll_interval_seconds * (2 ** min(failures, 5))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)
            self._wake.clear()

    async def run_once(self, now: float | None = None) -> int:
        """One round: claim, deliver, record. Returns how many rows were claimed."""
        claimed = await self.claim(now)
        if not claimed:
            return 0
        outcomes = await asyncio.gather(*(self._deliver(row) for row in claimed))
        await self._record(outcomes)
        return len(claimed)

    async def claim(self, now: float | None = None) -> list[Claimed]:
        if not self._sinks:
            return []
        now = time.time() if now is None else now
        names = sorted(self._sinks)
        marks = ",".join("?" * len(names))
        lock = " FOR UPDATE OF o SKIP LOCKED" if self._db.dialect == "postgres" else ""
        async with self._db.transaction(exclusive=True) as tx:
            rows = await tx.fetchall(
                _CLAIM_SQL.format(marks=marks, lock=lock),
                now,
                now,
                *names,
                self._rp.outbox_batch,
            )
            if not rows:
                return []
            ids = [int(r["id"]) for r in rows]
            await tx.execute(
                _LEASE_SQL.format(marks=",".join("?" * len(ids))),
                self.owner,
                now + self._rp.lease_seconds,
                now,
                *ids,
            )
        return [
            Claimed(
                id=int(r["id"]),
                sink=r["sink"],
                key=r["idempotency_key"],
                report_id=r["report_id"],
                revision=int(r["revision"]),
                attempts=int(r["attempts"]) + 1,
                payload=str(r["payload"]).encode("utf-8"),
            )
            for r in rows
        ]

    async def _deliver(self, row: Claimed) -> Outcome:
        sink = self._sinks[row.sink]
        try:
            async with asyncio.timeout(self._rp.lease_seconds / 2):
                await sink.deliver(row.key, row.payload)
        except DeliveryError as exc:
            return Outcome(row, str(exc) or type(exc).__name__, exc.retry_after)
        except TimeoutError:
            return Outcome(row, "timed out")
        except Exception as exc:  # a broken sink must not kill the worker
            log.exception("sink %s raised", row.sink)
            return Outcome(row, f"{type(exc).__name__}: {exc}")
        return Outcome(row, None)

    async def _record(self, outcomes: Sequence[Outcome]) -> None:
        now = time.time()
        ok = [out.row for out in outcomes if out.error is None]
        async with self._db.transaction() as tx:
            if ok:
                # one statement for the whole batch: deliveries are the common case
                marks = ",".join("?" * len(ok))
                self.delivered += await tx.execute(
                    _DELIVERED_SQL.format(marks=marks), now, now, self.owner, *(r.id for r in ok)
                )
                await tx.execute(
                    _FORWARDED_SQL.format(marks=marks), now, *(r.report_id for r in ok)
                )
            for out in outcomes:
                if out.error is not None:
                    await self._failed(tx, out, now)

    async def _failed(self, tx: Tx, out: Outcome, now: float) -> None:
        row, error = out.row, out.error or "failed"
        self.failed += 1
        dead = row.attempts >= self._rp.max_attempts
        delay = backoff(
            row.attempts,
            self._rp.backoff_base_seconds,
            self._rp.backoff_max_seconds,
            retry_after=out.retry_after,
        )
        await tx.execute(
            "UPDATE aiguard_outbox SET state = ?, next_attempt_at = ?, last_error = ?,"
            " lease_owner = NULL, lease_until = NULL, updated_at = ?"
            " WHERE id = ? AND lease_owner = ?",
            "dead" if dead else "pending",
            now + delay,
            error[:1000],
            now,
            row.id,
            self.owner,
        )
        if dead:
            self.dead += 1
            log.error(
                "report event %s to %s dead after %d attempts: %s",
                row.key,
                row.sink,
                row.attempts,
                error,
            )
        else:
            log.warning(
                "report event %s to %s failed (attempt %d, retry in %.1f s): %s",
                row.key,
                row.sink,
                row.attempts,
                delay,
                error,
            )


async def retry(
    db: Database,
    *,
    outbox_id: int | None = None,
    report_id: str | None = None,
    dead_only: bool = True,
    now: float | None = None,
) -> int:
    """Make rows due again now with a fresh attempt budget (the CLI's ``reports retry``)."""
    now = time.time() if now is None else now
    # a pending row under a live lease is being delivered right now: leave it alone
    where = [
        "state = 'dead'"
        if dead_only
        else "(state = 'dead' OR (state = 'pending' AND (lease_until IS NULL OR lease_until < ?)))"
    ]
    args: list[Any] = [now, now] if dead_only else [now, now, now]
    if outbox_id is not None:
        where.append("id = ?")
        args.append(outbox_id)
    if report_id is not None:
        where.append("report_id = ?")
        args.append(report_id)
    async with db.transaction() as tx:
        return await tx.execute(
            _RETRY_SQL + " AND ".join(where),
            *args,
        )
