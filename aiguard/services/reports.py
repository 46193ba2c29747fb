"""Inaccuracy reports: intake from end users, the provider's pull feed and resolutions.

Every accepted submission (a new report, or a changed re-submission of the reporter's report on
the same message) writes, in ONE transaction: the report row, an event (the exact JSON document
the provider receives, with its idempotency key) and one outbox row per configured sink. The
outbox worker (``services.outbox``) delivers from there, so an accepted report reaches the
provider even if this process dies right after answering.

Submissions are serialised (SQLite ``BEGIN IMMEDIATE``; PostgreSQL a transaction advisory lock):
that makes the per-subject rate limit and the one-report-per-message rule race-free across
replicas, and makes event ids commit in id order so the provider's pull cursor never skips one.
Reports are rare and rate limited, so the serialisation costs nothing that matters.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from aiguard.errors import AIGuardError
from aiguard.policy.models import Policy
from aiguard.policy.prompts import Catalogue, Text
from aiguard.services.records import RecordWriter
from aiguard.services.sinks import sink_names
from aiguard.store.base import Database, Migration, Row, Tx

CATEGORIES = ("inaccurate", "outdated", "harmful", "infringing", "privacy", "other")
OUTCOMES = ("corrected", "removed", "not_an_error", "other")
Status = Literal["received", "forwarded", "resolved"]

# pg_advisory_xact_lock key for report intake: int.from_bytes(b"aigrprt\x00") fits a bigint
_PG_LOCK_KEY = 0x6169677270727400
_MESSAGE_ID_MAX = 200
# a report can arrive at another replica before the one that served the answer flushed its
# record (``record_flush_ms``): look once more after this pause before answering 404
_CROSS_REPLICA_WAIT = 0.15

MIGRATIONS: list[Migration] = [
    Migration(
        component="reports",
        version=1,
        name="reports, report events, outbox",
        sqlite="""
CREATE TABLE aiguard_reports (
  id TEXT PRIMARY KEY,
  message_id TEXT NOT NULL,
  subject_id TEXT NOT NULL,
  conversation_id TEXT NOT NULL,
  category TEXT NOT NULL,
  comment TEXT NOT NULL,
  correction TEXT NOT NULL,
  locale TEXT NOT NULL,
  revision INTEGER NOT NULL,
  status TEXT NOT NULL,
  outcome TEXT,
  reply TEXT,
  message TEXT NOT NULL,
  created_at REAL NOT NULL,
  updated_at REAL NOT NULL,
  forwarded_at REAL,
  resolved_at REAL,
  UNIQUE (message_id, subject_id)
);
CREATE INDEX aiguard_reports_updated ON aiguard_reports (updated_at);
CREATE TABLE aiguard_report_events (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  report_id TEXT NOT NULL,
  revision INTEGER NOT NULL,
  type TEXT NOT NULL,
  subject_id TEXT NOT NULL,
  idempotency_key TEXT NOT NULL UNIQUE,
  payload TEXT NOT NULL,
  created_at REAL NOT NULL
);
CREATE INDEX aiguard_report_events_subject ON aiguard_report_events (subject_id, created_at);
CREATE INDEX aiguard_report_events_report ON aiguard_report_events (report_id);
CREATE TABLE aiguard_outbox (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  event_id INTEGER NOT NULL,
  report_id TEXT NOT NULL,
  revision INTEGER NOT NULL,
  sink TEXT NOT NULL,
  idempotency_key TEXT NOT NULL,
  state TEXT NOT NULL,
  attempts INTEGER NOT NULL,
  next_attempt_at REAL NOT NULL,
  lease_owner TEXT,
  lease_until REAL,
  last_error TEXT,
  created_at REAL NOT NULL,
  updated_at REAL NOT NULL,
  delivered_at REAL,
  UNIQUE (event_id, sink)
);
CREATE INDEX aiguard_outbox_due ON aiguard_outbox (state, next_attempt_at);
CREATE INDEX aiguard_outbox_report ON aiguard_outbox (report_id)
""",
        postgres="""
CREATE TABLE aiguard_reports (
  id TEXT PRIMARY KEY,
  message_id TEXT NOT NULL,
  subject_id TEXT NOT NULL,
  conversation_id TEXT NOT NULL,
  category TEXT NOT NULL,
  comment TEXT NOT NULL,
  correction TEXT NOT NULL,
  locale TEXT NOT NULL,
  revision INTEGER NOT NULL,
  status TEXT NOT NULL,
  outcome TEXT,
  reply TEXT,
  message TEXT NOT NULL,
  created_at DOUBLE PRECISION NOT NULL,
  updated_at DOUBLE PRECISION NOT NULL,
  forwarded_at DOUBLE PRECISION,
  resolved_at DOUBLE PRECISION,
  UNIQUE (message_id, subject_id)
);
CREATE INDEX aiguard_reports_updated ON aiguard_reports (updated_at);
CREATE TABLE aiguard_report_events (
  id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  report_id TEXT NOT NULL,
  revision INTEGER NOT NULL,
  type TEXT NOT NULL,
  subject_id TEXT NOT NULL,
  idempotency_key TEXT NOT NULL UNIQUE,
  payload TEXT NOT NULL,
  created_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX aiguard_report_events_subject ON aiguard_report_events (subject_id, created_at);
CREATE INDEX aiguard_report_events_report ON aiguard_report_events (report_id);
CREATE TABLE aiguard_outbox (
  id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  event_id BIGINT NOT NULL,
  report_id TEXT NOT NULL,
  revision INTEGER NOT NULL,
  sink TEXT NOT NULL,
  idempotency_key TEXT NOT NULL,
  state TEXT NOT NULL,
  attempts INTEGER NOT NULL,
  next_attempt_at DOUBLE PRECISION NOT NULL,
  lease_owner TEXT,
  lease_until DOUBLE PRECISION,
  last_error TEXT,
  created_at DOUBLE PRECISION NOT NULL,
  updated_at DOUBLE PRECISION NOT NULL,
  delivered_at DOUBLE PRECISION,
  UNIQUE (event_id, sink)
);
CREATE INDEX aiguard_outbox_due ON aiguard_outbox (state, next_attempt_at);
CREATE INDEX aiguard_outbox_report ON aiguard_outbox (report_id)
""",
    )
]


# --- errors (the HTTP layer maps ``code`` to a status) ---------------------------------------
class ReportError(AIGuardError):
    code = "report_error"


class NotFound(ReportError, LookupError):
    """Unknown id, or an id that belongs to someone else (indistinguishable on purpose)."""

    code = "not_found"


class InvalidReport(ReportError, ValueError):
    code = "invalid_report"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class RateLimited(ReportError):
    code = "rate_limited"

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many reports; retry in {retry_after} s")
        self.retry_after = retry_after


class Conflict(ReportError):
    code = "conflict"


class Reporter(Protocol):
    """Who reports (``aiguard.asgi.identity.RequestIdentity`` fits)."""

    @property
    def subject_id(self) -> str: ...

    @property
    def conversation_id(self) -> str: ...

    @property
    def locale(self) -> str: ...


@dataclass(frozen=True, slots=True)
class Report:
    id: str
    message_id: str
    subject_id: str
    conversation_id: str
    category: str
    comment: str
    correction: str
    locale: str
    revision: int
    status: Status
    outcome: str | None
    reply: str | None
    created_at: float
    updated_at: float
    forwarded_at: float | None
    resolved_at: float | None
    changed: bool = True
    """False when a submission repeated the stored report unchanged (no new event)."""

    @classmethod
    def from_row(cls, row: Row, *, changed: bool = True) -> Report:
        return cls(
            id=row["id"],
            message_id=row["message_id"],
            subject_id=row["subject_id"],
            conversation_id=row["conversation_id"],
            category=row["category"],
            comment=row["comment"],
            correction=row["correction"],
            locale=row["locale"],
            revision=int(row["revision"]),
            status=row["status"],
            outcome=row["outcome"],
            reply=row["reply"],
            created_at=float(row["created_at"]),
            updated_at=float(row["updated_at"]),
            forwarded_at=_opt_float(row["forwarded_at"]),
            resolved_at=_opt_float(row["resolved_at"]),
            changed=changed,
        )

    def resolution(self) -> dict[str, Any] | None:
        if self.status != "resolved":
            return None
        return {"outcome": self.outcome, "reply": self.reply, "resolved_at": self.resolved_at}

    def public(self) -> dict[str, Any]:
        """What the reporter sees (no pseudonyms)."""
        return {
            "id": self.id,
            "message_id": self.message_id,
            "category": self.category,
            "comment": self.comment,
            "correction": self.correction,
            "status": self.status,
            "revision": self.revision,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "forwarded_at": self.forwarded_at,
            "resolution": self.resolution(),
        }

    def provider(self) -> dict[str, Any]:
        """What the provider sees: the reporter's view plus the pseudonyms and the locale."""
        out = self.public()
        out.update(
            subject_id=self.subject_id, conversation_id=self.conversation_id, locale=self.locale
        )
        return out


def _opt_float(v: Any) -> float | None:
    return None if v is None else float(v)


# a pulled report is forwarded once the event of its *current* revision is at or before the
# cursor the provider now holds (only placeholders are formatted in)
_PULLED_SQL = (
    "UPDATE aiguard_reports SET status = 'forwarded', forwarded_at = ?"
    " WHERE status = 'received' AND id IN ({marks}) AND EXISTS (SELECT 1 FROM"
    " aiguard_report_events e WHERE e.report_id = aiguard_reports.id"
    " AND e.revision = aiguard_reports.revision AND e.id <= ?)"
)
_REPORT_COLS = (
    "id, message_id, subject_id, conversation_id, category, comment, correction, locale,"
    " revision, status, outcome, reply, created_at, updated_at, forwarded_at, resolved_at"
)


def _text(field: str, value: Any, limit: int) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidReport(field, "must be a string")
    text: str = value.strip()
    if len(text) > limit:
        raise InvalidReport(field, f"at most {limit} characters")
    if "\x00" in text:  # PostgreSQL TEXT cannot hold NUL; nobody types one
        raise InvalidReport(field, "must not contain NUL characters")
    return text


def new_report_id() -> str:
    return "rep_" + uuid.uuid4().hex


def idempotency_key(report_id: str, revision: int) -> str:
    return f"{report_id}.{revision}"


async def serialise_intake(db: Database, tx: Tx) -> None:
    """Inside ``db.transaction(exclusive=True)``: make intake transactions run one at a time."""
    if db.dialect == "postgres":
        await tx.execute("SELECT pg_advisory_xact_lock(?)", _PG_LOCK_KEY)


class ReportService:
    """Intake, status and provider side of reports. ``notify`` is called after each accepted
    submission (the runtime passes ``OutboxWorker.wake`` so delivery starts at once)."""

    def __init__(
        self,
        db: Database,
        policy: Policy,
        catalogue: Catalogue,
        records: RecordWriter,
        *,
        notify: Callable[[], None] | None = None,
    ) -> None:
        self._db = db
        self._policy = policy
        self._rp = policy.reports
        self._catalogue = catalogue
        self._records = records
        self._sinks = sink_names(policy)
        self.notify = notify

    async def start(self) -> None:
        """Create the tables (idempotent; the runtime may also migrate them itself)."""
        await self._db.migrate(MIGRATIONS)

    def procedure(self, locale: str) -> Text:
        """The published handling procedure, in ``locale`` (falls back to the default)."""
        return self._catalogue.text(self._rp.procedure, locale)

    # --- reporter side ----------------------------------------------------------------------
    async def submit(
        self,
        identity: Reporter,
        message_id: Any,
        category: Any,
        comment: Any = None,
        correction: Any = None,
    ) -> Report:
        """Create (or update) the caller's report on one of their messages.

        Raises ``NotFound`` (unknown message or not the caller's), ``InvalidReport``,
        ``RateLimited``. Nothing is stored when it raises.
        """
        if not isinstance(category, str) or category not in CATEGORIES:
            raise InvalidReport("category", "one of " + ", ".join(CATEGORIES))
        comment_s = _text("comment", comment, self._rp.comment_max_chars)
        correction_s = _text("correction", correction, self._rp.correction_max_chars)
        if not isinstance(message_id, str) or not 0 < len(message_id) <= _MESSAGE_ID_MAX:
            raise NotFound("message not found")
        message = await self._message(message_id, identity.subject_id)
        if message is None:
            raise NotFound("message not found")

        now = time.time()
        async with self._db.transaction(exclusive=True) as tx:
            await serialise_intake(self._db, tx)
            row = await tx.fetchone(
                f"SELECT {_REPORT_COLS} FROM aiguard_reports"  # noqa: S608
                " WHERE message_id = ? AND subject_id = ?",
                message_id,
                identity.subject_id,
            )
            if row is not None and (row["category"], row["comment"], row["correction"]) == (
                category,
                comment_s,
                correction_s,
            ):
                # a double click or a retried request: same report, no new event, no budget used
                return Report.from_row(row, changed=False)
            await self._check_rate(tx, identity.subject_id, now)
            if row is None:
                report_id, revision, created_at, kind = new_report_id(), 1, now, "report.created"
                await tx.execute(
                    "INSERT INTO aiguard_reports (id, message_id, subject_id, conversation_id,"
                    " category, comment, correction, locale, revision, status, message,"
                    " created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    report_id,
                    message_id,
                    identity.subject_id,
                    message["conversation_id"],
                    category,
                    comment_s,
                    correction_s,
                    identity.locale,
                    revision,
                    "received",
                    json.dumps(message, ensure_ascii=False),
                    created_at,
                    now,
                )
            else:
                # an update reopens the report: the earlier resolution answered other words
                report_id, revision = row["id"], int(row["revision"]) + 1
                created_at, kind = float(row["created_at"]), "report.updated"
                await tx.execute(
                    "UPDATE aiguard_reports SET category = ?, comment = ?, correction = ?,"
                    " locale = ?, revision = ?, status = 'received', outcome = NULL,"
                    " reply = NULL, forwarded_at = NULL, resolved_at = NULL, updated_at = ?"
                    " WHERE id = ?",
                    category,
                    comment_s,
                    correction_s,
                    identity.locale,
                    revision,
                    now,
                    report_id,
                )
            report = Report(
                id=report_id,
                message_id=message_id,
                subject_id=identity.subject_id,
                conversation_id=message["conversation_id"],
                category=category,
                comment=comment_s,
                correction=correction_s,
                locale=identity.locale,
                revision=revision,
                status="received",
                outcome=None,
                reply=None,
                created_at=created_at,
                updated_at=now,
                forwarded_at=None,
                resolved_at=None,
            )
            await self._write_event(tx, report, kind, message, now)
        if self.notify is not None:
            self.notify()
        return report

    async def _message(self, message_id: str, subject_id: str) -> dict[str, Any] | None:
        """The caller's message, or ``None`` (unknown and someone else's take the same time)."""
        if self._records.queued(message_id) is not None:
            # make the record durable before a report points at it
            await self._records.flush()
        message = await self._records.get(message_id)
        if message is None or message["subject_id"] != subject_id:
            await asyncio.sleep(_CROSS_REPLICA_WAIT)
            if message is None:
                message = await self._records.get(message_id)
        if message is None or message["subject_id"] != subject_id:
            return None
        return message

    async def _check_rate(self, tx: Tx, subject_id: str, now: float) -> None:
        window = self._rp.rate_window_seconds
        row = await tx.fetchone(
            "SELECT COUNT(*) AS n, MIN(created_at) AS oldest FROM aiguard_report_events"
            " WHERE subject_id = ? AND created_at > ?",
            subject_id,
            now - window,
        )
        if row is not None and int(row["n"]) >= self._rp.rate_limit:
            oldest = float(row["oldest"])
            raise RateLimited(max(1, int(oldest + window - now) + 1))

    async def _write_event(
        self, tx: Tx, report: Report, kind: str, message: dict[str, Any], now: float
    ) -> None:
        key = idempotency_key(report.id, report.revision)
        prefix = self._policy.prefix
        doc = {
            "id": key,
            "type": kind,
            "created_at": now,
            "report": {
                **report.provider(),
                "resolution_url": f"{prefix}/provider/reports/{report.id}/resolution",
            },
            "message": message,
        }
        payload = json.dumps(doc, ensure_ascii=False, separators=(",", ":"))
        await tx.execute(
            "INSERT INTO aiguard_report_events (report_id, revision, type, subject_id,"
            " idempotency_key, payload, created_at) VALUES (?,?,?,?,?,?,?)",
            report.id,
            report.revision,
            kind,
            report.subject_id,
            key,
            payload,
            now,
        )
        if not self._sinks:
            return
        ev = await tx.fetchone(
            "SELECT id FROM aiguard_report_events WHERE idempotency_key = ?", key
        )
        assert ev is not None
        for sink in self._sinks:
            await tx.execute(
                "INSERT INTO aiguard_outbox (event_id, report_id, revision, sink,"
                " idempotency_key, state, attempts, next_attempt_at, created_at, updated_at)"
                " VALUES (?,?,?,?,?,'pending',0,?,?,?)",
                int(ev["id"]),
                report.id,
                report.revision,
                sink,
                key,
                now,
                now,
                now,
            )

    async def status(self, identity: Reporter, report_id: str) -> Report:
        """The caller's report; ``NotFound`` for unknown ids and other subjects' reports."""
        report = await self.get(report_id)
        if report is None or report.subject_id != identity.subject_id:
            raise NotFound("report not found")
        return report

    async def get(self, report_id: str) -> Report | None:
        if not isinstance(report_id, str) or len(report_id) > 100:
            return None
        row = await self._db.fetchone(
            f"SELECT {_REPORT_COLS} FROM aiguard_reports WHERE id = ?",  # noqa: S608
            report_id,
        )
        return Report.from_row(row) if row is not None else None

    # --- provider side ----------------------------------------------------------------------
    async def pull(self, cursor: int, limit: int) -> tuple[list[dict[str, Any]], int]:
        """Events after ``cursor`` (oldest first) and the cursor to continue from.

        Each item is the event document (as webhooks receive it) plus ``cursor``. Pulling marks
        the pulled revisions ``forwarded``: the provider has them.
        """
        rows = await self._db.fetchall(
            "SELECT id, report_id, revision, payload FROM aiguard_report_events"
            " WHERE id > ? ORDER BY id LIMIT ?",
            cursor,
            limit,
        )
        items: list[dict[str, Any]] = []
        for r in rows:
            doc = json.loads(r["payload"])
            doc["cursor"] = str(r["id"])
            items.append(doc)
        next_cursor = int(rows[-1]["id"]) if rows else cursor
        if rows:
            ids = sorted({str(r["report_id"]) for r in rows})
            async with self._db.transaction() as tx:
                await tx.execute(
                    _PULLED_SQL.format(marks=",".join("?" * len(ids))),
                    time.time(),
                    *ids,
                    next_cursor,
                )
        return items, next_cursor

    async def resolve(
        self, report_id: str, outcome: Any, reply: Any, revision: Any = None
    ) -> Report:
        """Record the provider's resolution; the reporter sees it on their status page.

        ``revision`` (optional) guards against resolving words the reporter has since changed:
        a mismatch raises ``Conflict``. Resolving again overwrites the earlier resolution.
        """
        if not isinstance(outcome, str) or outcome not in OUTCOMES:
            raise InvalidReport("outcome", "one of " + ", ".join(OUTCOMES))
        reply_s = _text("reply", reply, self._rp.reply_max_chars)
        if revision is not None and (isinstance(revision, bool) or not isinstance(revision, int)):
            raise InvalidReport("revision", "must be an integer")
        now = time.time()
        async with self._db.transaction() as tx:
            row = await tx.fetchone(
                f"SELECT {_REPORT_COLS} FROM aiguard_reports WHERE id = ?",  # noqa: S608
                report_id,
            )
            if row is None:
                raise NotFound("report not found")
            if revision is not None and int(row["revision"]) != revision:
                raise Conflict(
                    f"report is at revision {row['revision']}, not {revision}: pull it again"
                )
            n = await tx.execute(
                "UPDATE aiguard_reports SET status = 'resolved', outcome = ?, reply = ?,"
                " resolved_at = ?, updated_at = ?, forwarded_at = COALESCE(forwarded_at, ?)"
                " WHERE id = ? AND revision = ?",
                outcome,
                reply_s,
                now,
                now,
                now,
                report_id,
                int(row["revision"]),
            )
            if n != 1:  # the reporter changed it between our read and write (PostgreSQL)
                raise Conflict("report changed while resolving: pull it again")
            new = await tx.fetchone(
                f"SELECT {_REPORT_COLS} FROM aiguard_reports WHERE id = ?",  # noqa: S608
                report_id,
            )
        assert new is not None
        return Report.from_row(new)


async def purge_reports(db: Database, cutoff: float) -> int:
    """Delete reports last changed before ``cutoff`` that have no delivery still pending,
    with their events and finished outbox rows; return how many reports were deleted."""
    async with db.transaction() as tx:
        n = await tx.execute(
            "DELETE FROM aiguard_reports WHERE updated_at < ? AND id NOT IN"
            " (SELECT report_id FROM aiguard_outbox WHERE state = 'pending')",
            cutoff,
        )
        await tx.execute(
            "DELETE FROM aiguard_outbox WHERE state <> 'pending' AND report_id NOT IN"
            " (SELECT id FROM aiguard_reports)"
        )
        await tx.execute(
            "DELETE FROM aiguard_report_events WHERE report_id NOT IN"
            " (SELECT id FROM aiguard_reports)"
        )
        return n


# --- data-subject rights (``aiguard subject export|erase``) ---------------------------------
# What an erased report keeps in place of its pseudonyms. Real subject ids are 32 hex
# characters, so this can never be one.
ERASED = "erased"
_DAY = 86400.0


def _day(t: Any) -> float | None:
    """``t`` cut to the start of its UTC day: exact times would match the provider's copy."""
    return None if t is None else float(t) - float(t) % _DAY


async def subject_export(db: Database, subject_id: str) -> dict[str, Any]:
    """Every report of one (pseudonymous) subject with its message snapshot, the event
    documents sent to the provider and where they were delivered, oldest first."""
    await db.migrate(MIGRATIONS)  # a database that never ran ``db upgrade`` holds nothing
    if subject_id == ERASED:
        return {"reports": []}
    rows = await db.fetchall(
        f"SELECT {_REPORT_COLS}, message FROM aiguard_reports"  # noqa: S608
        " WHERE subject_id = ? ORDER BY created_at, id",
        subject_id,
    )
    events = await db.fetchall(
        # the subject's events: by their own subject column and through the subject's reports
        "SELECT id, report_id, revision, type, idempotency_key, payload, created_at"
        " FROM aiguard_report_events WHERE subject_id = ? OR report_id IN"
        " (SELECT id FROM aiguard_reports WHERE subject_id = ?) ORDER BY id",
        subject_id,
        subject_id,
    )
    deliveries = await db.fetchall(
        "SELECT report_id, revision, sink, state, attempts, created_at, delivered_at"
        " FROM aiguard_outbox WHERE report_id IN"
        " (SELECT id FROM aiguard_reports WHERE subject_id = ?) ORDER BY id",
        subject_id,
    )
    out: list[dict[str, Any]] = []
    for row in rows:
        rid = row["id"]
        out.append(
            {
                **Report.from_row(row).provider(),
                "message": json.loads(row["message"]),
                "events": [
                    {
                        "id": int(e["id"]),
                        "type": e["type"],
                        "revision": int(e["revision"]),
                        "idempotency_key": e["idempotency_key"],
                        "created_at": float(e["created_at"]),
                        "document": json.loads(e["payload"]),
                    }
                    for e in events
                    if e["report_id"] == rid
                ],
                "deliveries": [
                    {
                        "revision": int(d["revision"]),
                        "sink": d["sink"],
                        "state": d["state"],
                        "attempts": int(d["attempts"]),
                        "created_at": float(d["created_at"]),
                        "delivered_at": _opt_float(d["delivered_at"]),
                    }
                    for d in deliveries
                    if d["report_id"] == rid
                ],
            }
        )
    return {"reports": out}


async def subject_erase(db: Database, subject_id: str) -> int:
    """Erase the subject's personal data from reports; return the rows affected (outbox rows
    and events deleted, reports anonymised); 0 when nothing is left to erase.

    Reports are anonymised, not deleted, so report statistics (how many, which category,
    locale, outcome, per day) stay right. In one transaction, serialised with report intake:

    * every outbox row of the subject is deleted, so a report not yet delivered never will be
      (one a worker is sending at this very moment, under its lease, cannot be called back);
    * every event is deleted (each embeds the report, the pseudonyms and the answer);
    * each report gets a fresh id, ``ERASED`` for its pseudonyms and message id, empty
      comment, correction and reply, an empty message snapshot and timestamps cut to the day,
      so nothing in it matches the copy a recipient already holds.

    Copies already delivered (webhook receivers, the JSON-lines file) are the recipients' to
    erase; the provider's resolution URL of an erased report answers 404.
    """
    await db.migrate(MIGRATIONS)
    if subject_id == ERASED:
        return 0
    async with db.transaction(exclusive=True) as tx:
        await serialise_intake(db, tx)
        # outbox first: its rows are found through the events deleted next
        n = await tx.execute(
            "DELETE FROM aiguard_outbox WHERE report_id IN"
            " (SELECT id FROM aiguard_reports WHERE subject_id = ?) OR event_id IN"
            " (SELECT id FROM aiguard_report_events WHERE subject_id = ? OR report_id IN"
            " (SELECT id FROM aiguard_reports WHERE subject_id = ?))",
            subject_id,
            subject_id,
            subject_id,
        )
        n += await tx.execute(
            "DELETE FROM aiguard_report_events WHERE subject_id = ? OR report_id IN"
            " (SELECT id FROM aiguard_reports WHERE subject_id = ?)",
            subject_id,
            subject_id,
        )
        rows = await tx.fetchall(
            "SELECT id, created_at, updated_at, forwarded_at, resolved_at FROM aiguard_reports"
            " WHERE subject_id = ?",
            subject_id,
        )
        for row in rows:
            new_id = new_report_id()
            n += await tx.execute(
                "UPDATE aiguard_reports SET id = ?, message_id = ?, subject_id = ?,"
                " conversation_id = ?, comment = '', correction = '', reply = NULL,"
                " message = '{}', created_at = ?, updated_at = ?, forwarded_at = ?,"
                " resolved_at = ? WHERE id = ?",
                new_id,
                # unique per report: (message_id, subject_id) is a unique key
                f"{ERASED}:{new_id}",
                ERASED,
                ERASED,
                _day(row["created_at"]),
                _day(row["updated_at"]),
                _day(row["forwarded_at"]),
                _day(row["resolved_at"]),
                row["id"],
            )
        return n
