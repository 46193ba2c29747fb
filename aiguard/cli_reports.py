"""``aiguard reports list|show|export|retry`` and ``aiguard purge``: operator tools for reports.

Every command opens the policy's database (``storage.url``), applies pending migrations of the
records and reports components, does its work and closes it. Output is JSON (one object per
line for lists and exports) unless stated otherwise, so it pipes into ``jq``.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TextIO

from aiguard.errors import ConfigError
from aiguard.policy.models import Policy
from aiguard.services import outbox, records, reports
from aiguard.store import Database, open_database

_REPORT_FIELDS = [
    "id",
    "message_id",
    "subject_id",
    "conversation_id",
    "category",
    "comment",
    "correction",
    "locale",
    "revision",
    "status",
    "outcome",
    "reply",
    "created_at",
    "updated_at",
    "forwarded_at",
    "resolved_at",
]
_SHOW_SQL = (
    "SELECT id, message_id, subject_id, conversation_id, category, comment, correction, locale,"
    " revision, status, outcome, reply, created_at, updated_at, forwarded_at, resolved_at,"
    " message FROM aiguard_reports WHERE id = ?"
)
_EXPORT_SQL = (
    "SELECT id, message_id, subject_id, conversation_id, category, comment, correction, locale,"
    " revision, status, outcome, reply, created_at, updated_at, forwarded_at, resolved_at"
    " FROM aiguard_reports WHERE updated_at >= ? AND updated_at < ? ORDER BY updated_at, id"
)
# CAST: PostgreSQL cannot infer the type of a bare "? IS NULL" parameter
_LIST_SQL = (
    "SELECT r.id, r.category, r.status, r.revision, r.updated_at, r.message_id,"
    " (SELECT COUNT(*) FROM aiguard_outbox o WHERE o.report_id = r.id"
    "  AND o.state = 'pending') AS pending,"
    " (SELECT COUNT(*) FROM aiguard_outbox o WHERE o.report_id = r.id"
    "  AND o.state = 'dead') AS dead"
    " FROM aiguard_reports r"
    " WHERE (CAST(? AS TEXT) IS NULL OR r.status = ?)"
    " AND (CAST(? AS TEXT) IS NULL OR r.id IN"
    "  (SELECT report_id FROM aiguard_outbox WHERE state = ?))"
    " ORDER BY r.updated_at DESC LIMIT ?"
)


def register(sub: Any) -> None:
    """Add ``reports`` (with its subcommands) and ``purge`` to the ``aiguard`` parser."""
    rep = sub.add_parser("reports", help="inaccuracy reports: list, show, export, retry delivery")
    rsub = rep.add_subparsers(dest="reports_command", required=True, metavar="ACTION")

    ls = rsub.add_parser("list", help="recent reports with their delivery state, newest first")
    ls.add_argument("--status", choices=["received", "forwarded", "resolved"])
    ls.add_argument(
        "--delivery", choices=["pending", "dead", "delivered"], help="with an outbox row in it"
    )
    ls.add_argument("--limit", type=int, default=50)
    ls.set_defaults(func=_list)

    show = rsub.add_parser("show", help="one report: its message, events and deliveries")
    show.add_argument("report_id")
    show.set_defaults(func=_show)

    exp = rsub.add_parser("export", help="every report changed in a period, as JSON lines or CSV")
    exp.add_argument("--since", help="ISO date/time (UTC if no offset) or epoch seconds")
    exp.add_argument("--until", help="ISO date/time or epoch seconds (exclusive)")
    exp.add_argument("--format", choices=["jsonl", "csv"], default="jsonl")
    exp.add_argument("-o", "--output", help="file to write (default: stdout)")
    exp.set_defaults(func=_export)

    retry = rsub.add_parser(
        "retry", help="make dead (or, with --pending, waiting) deliveries due now, attempts reset"
    )
    which = retry.add_mutually_exclusive_group(required=True)
    which.add_argument("--report", dest="report_id", help="deliveries of this report")
    which.add_argument("--outbox", dest="outbox_id", type=int, help="one outbox row")
    which.add_argument("--all", action="store_true", help="every dead delivery")
    retry.add_argument(
        "--pending", action="store_true", help="also waiting (not yet dead) deliveries"
    )
    retry.set_defaults(func=_retry)

    purge = sub.add_parser(
        "purge", help="delete message records and finished reports past reports.retention_days"
    )
    purge.set_defaults(func=_purge)


def _run(policy: Policy, work: Callable[[Database], Awaitable[int]]) -> int:
    async def main() -> int:
        db = open_database(policy.storage.url, pool_size=policy.storage.pool_size)
        await db.connect()
        try:
            await db.migrate([*records.MIGRATIONS, *reports.MIGRATIONS])
            return await work(db)
        finally:
            await db.close()

    return asyncio.run(main())


def _print(obj: Any, out: TextIO | None = None) -> None:
    print(json.dumps(obj, ensure_ascii=False, default=str), file=out or sys.stdout)


def _when(value: str | None, flag: str) -> float | None:
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        raise ConfigError(f"{flag}: not a date, date-time or epoch seconds: {value!r}") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


def _list(args: argparse.Namespace) -> int:
    async def work(db: Database) -> int:
        rows = await db.fetchall(
            _LIST_SQL,
            args.status,
            args.status,
            args.delivery,
            args.delivery,
            max(1, args.limit),
        )
        for row in rows:
            _print(row)
        return 0

    return _run(args.policy, work)


def _show(args: argparse.Namespace) -> int:
    async def work(db: Database) -> int:
        row = await db.fetchone(_SHOW_SQL, args.report_id)
        if row is None:
            print(f"aiguard: no report {args.report_id}", file=sys.stderr)
            return 1
        row["message"] = json.loads(row["message"])
        row["events"] = await db.fetchall(
            "SELECT id, revision, type, idempotency_key, created_at FROM aiguard_report_events"
            " WHERE report_id = ? ORDER BY id",
            args.report_id,
        )
        row["deliveries"] = await db.fetchall(
            "SELECT id, sink, idempotency_key, state, attempts, next_attempt_at, last_error,"
            " delivered_at FROM aiguard_outbox WHERE report_id = ? ORDER BY id",
            args.report_id,
        )
        print(json.dumps(row, ensure_ascii=False, indent=2, default=str))
        return 0

    return _run(args.policy, work)


def _export(args: argparse.Namespace) -> int:
    since = _when(args.since, "--since")
    until = _when(args.until, "--until")
    if args.output:
        with open(args.output, "w", encoding="utf-8", newline="") as f:
            return _export_to(args, f, since, until)
    return _export_to(args, sys.stdout, since, until)


def _export_to(
    args: argparse.Namespace, out: TextIO, since: float | None, until: float | None
) -> int:
    async def work(db: Database) -> int:
        writer = csv.DictWriter(out, _REPORT_FIELDS) if args.format == "csv" else None
        if writer is not None:
            writer.writeheader()
        n = 0
        lo = since if since is not None else 0.0
        hi = until if until is not None else 1e18
        async for row in db.iterate(_EXPORT_SQL, lo, hi):
            if writer is not None:
                writer.writerow(row)
            else:
                _print(row, out)
            n += 1
        print(f"exported {n} report(s)", file=sys.stderr)
        return 0

    return _run(args.policy, work)


def _retry(args: argparse.Namespace) -> int:
    async def work(db: Database) -> int:
        n = await outbox.retry(
            db, outbox_id=args.outbox_id, report_id=args.report_id, dead_only=not args.pending
        )
        _print({"requeued": n})
        return 0

    return _run(args.policy, work)


def _purge(args: argparse.Namespace) -> int:
    async def work(db: Database) -> int:
        _print(await outbox.purge_expired(db, args.policy))
        return 0

    return _run(args.policy, work)
