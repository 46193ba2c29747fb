"""``aiguard db upgrade``, ``aiguard consent export|verify``, ``aiguard subject export|erase``.

Every command opens the policy's database (``storage.url``), does its work and closes it.
Subject ids are the pseudonymous ids aiguard stores (32 hex characters), never raw user ids.
Data-subject commands cover every component that exposes ``subject_export(db, subject_id)`` /
``subject_erase(db, subject_id)`` at module level (see ``SUBJECT_COMPONENTS``), plus consent.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TextIO

from aiguard.policy.models import Policy
from aiguard.policy.prompts import Catalogue
from aiguard.services.consent import MIGRATIONS, ConsentService
from aiguard.store import Database, Migration, open_database

# components whose tables ``db upgrade`` creates, in dependency order
COMPONENTS = ("aiguard.services.consent", "aiguard.services.records", "aiguard.services.reports")
# components asked for a subject's data besides the consent ledger
SUBJECT_COMPONENTS = ("aiguard.services.records", "aiguard.services.reports")


def _all_migrations() -> list[Migration]:
    found: list[Migration] = []
    for name in COMPONENTS:
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        found.extend(getattr(module, "MIGRATIONS", []))
    return found


def _run(policy: Policy, work: Callable[[Database], Awaitable[int]]) -> int:
    async def main() -> int:
        db = open_database(policy.storage.url, pool_size=2)
        try:
            await db.connect()
            await db.migrate(MIGRATIONS)
            return await work(db)
        finally:
            await db.close()

    return asyncio.run(main())


def _service(db: Database, policy: Policy) -> ConsentService:
    return ConsentService(db, policy, Catalogue(policy.prompts_dir, policy.default_locale))


def _print_json(data: Any) -> None:
    print(json.dumps(data, ensure_ascii=False, indent=2))


def _upgrade(args: argparse.Namespace) -> int:
    policy: Policy = args.policy

    async def main() -> int:
        db = open_database(policy.storage.url, pool_size=1)
        try:
            applied = await db.migrate(_all_migrations())
        finally:
            await db.close()
        for m in applied:
            print(f"applied {m.component} v{m.version}: {m.name}")
        if not applied:
            print("database is up to date")
        return 0

    return asyncio.run(main())


def _export(args: argparse.Namespace) -> int:
    policy: Policy = args.policy

    def work(out: TextIO) -> Callable[[Database], Awaitable[int]]:
        async def write(db: Database) -> int:
            chunks = _service(db, policy).export(
                args.format, since=args.since, until=args.until, subject_id=args.subject
            )
            async for chunk in chunks:
                out.write(chunk)
            return 0

        return write

    try:
        if args.output:
            with Path(args.output).open("w", encoding="utf-8", newline="") as f:
                return _run(policy, work(f))
        return _run(policy, work(sys.stdout))
    except ValueError as exc:  # a bad --since/--until
        print(f"aiguard: {exc}", file=sys.stderr)
        return 2


def _verify(args: argparse.Namespace) -> int:
    policy: Policy = args.policy

    async def work(db: Database) -> int:
        report = await _service(db, policy).verify()
        _print_json(report.as_dict())
        if report.ok:
            print(f"consent chain intact: {report.records} records", file=sys.stderr)
            if report.legacy_erasures:
                print(
                    f"note: {report.legacy_erasures} record(s) were erased before erasures were "
                    "chain entries (consent migration 2); they cannot be proven legitimate",
                    file=sys.stderr,
                )
            return 0
        who = report.broken_record_id or "(missing record)"
        print(
            f"consent chain BROKEN at record {who} (seq {report.broken_seq}): {report.reason}",
            file=sys.stderr,
        )
        return 1

    return _run(policy, work)


async def _component_calls(name: str, db: Database, subject_id: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for module_name in SUBJECT_COMPONENTS:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        fn = getattr(module, name, None)
        if fn is not None:
            out[module_name.rsplit(".", 1)[-1]] = await fn(db, subject_id)
    return out


def _subject_export(args: argparse.Namespace) -> int:
    policy: Policy = args.policy

    async def work(db: Database) -> int:
        data = await _service(db, policy).subject_export(args.subject_id)
        data.update(await _component_calls("subject_export", db, args.subject_id))
        _print_json(data)
        return 0

    return _run(policy, work)


def _subject_erase(args: argparse.Namespace) -> int:
    policy: Policy = args.policy

    async def work(db: Database) -> int:
        erased: dict[str, Any] = {
            "consent": await _service(db, policy).subject_erase(args.subject_id)
        }
        erased.update(await _component_calls("subject_erase", db, args.subject_id))
        _print_json({"subject_id": args.subject_id, "erased": erased})
        return 0

    return _run(policy, work)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``db``, ``consent`` and ``subject`` (with their subcommands) to the parser."""
    db = sub.add_parser("db", help="database maintenance")
    dsub = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    up = dsub.add_parser("upgrade", help="create or upgrade every aiguard table")
    up.set_defaults(func=_upgrade)

    consent = sub.add_parser("consent", help="the consent ledger: compliance export, verification")
    csub = consent.add_subparsers(dest="consent_command", required=True, metavar="ACTION")
    exp = csub.add_parser("export", help="stream consent records (CSV, JSON lines, receipts)")
    exp.add_argument("--since", help="ISO date/time, inclusive (UTC if no offset)")
    exp.add_argument("--until", help="ISO date/time, exclusive")
    exp.add_argument("--subject", help="only this pseudonymous subject id")
    exp.add_argument(
        "--format",
        choices=["csv", "jsonl", "receipt"],
        default="jsonl",
        help="receipt: one Kantara Consent Receipt v1.1 JSON per grant",
    )
    exp.add_argument("-o", "--output", help="file to write (default: stdout)")
    exp.set_defaults(func=_export)
    ver = csub.add_parser(
        "verify", help="check the hash chain; exit 1 naming the first broken record"
    )
    ver.set_defaults(func=_verify)

    subject = sub.add_parser("subject", help="data-subject rights: access and erasure")
    ssub = subject.add_subparsers(dest="subject_command", required=True, metavar="ACTION")
    sexp = ssub.add_parser("export", help="everything held about a subject, as JSON")
    sexp.add_argument("subject_id", help="pseudonymous subject id as stored")
    sexp.set_defaults(func=_subject_export)
    serase = ssub.add_parser(
        "erase", help="erase a subject's personal data (the consent chain stays verifiable)"
    )
    serase.add_argument("subject_id", help="pseudonymous subject id as stored")
    serase.set_defaults(func=_subject_erase)
