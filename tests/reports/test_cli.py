"""``aiguard reports ...`` and ``aiguard purge`` against both backends."""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import time
from pathlib import Path

import pytest

from aiguard import cli_reports
from aiguard.policy import Policy
from aiguard.policy.prompts import Catalogue
from aiguard.services.records import RecordWriter
from aiguard.services.reports import ReportService
from aiguard.store import open_database
from tests.reports.conftest import identity, make_policy, make_record


def run(policy: Policy, *argv: str) -> int:
    parser = argparse.ArgumentParser()
    cli_reports.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    args.policy = policy
    code: int = args.func(args)
    return code


def seed(policy: Policy, n: int) -> list[str]:
    async def go() -> list[str]:
        db = open_database(policy.storage.url)
        await db.connect()
        try:
            records = RecordWriter(db, policy)
            await records.start()
            svc = ReportService(db, policy, Catalogue(), records)
            await svc.start()
            ids = []
            for i in range(n):
                rec = make_record(created_at=time.time() - 100 * 86400 if i == 0 else None)
                records.add(rec)
                ids.append((await svc.submit(identity(), rec.message_id, "other", f"c{i}", "")).id)
            await records.stop()
            async with db.transaction() as tx:  # the first delivery has failed for good
                await tx.execute(
                    "UPDATE aiguard_outbox SET state = 'dead', attempts = 12 WHERE report_id = ?",
                    ids[0],
                )
            return ids
        finally:
            await db.close()

    return asyncio.run(go())


def test_list_show_export_retry_purge(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = make_policy(jsonl_path=tmp_path / "r.jsonl", rate_limit=100)
    policy = policy.model_copy(
        update={"storage": policy.storage.model_copy(update={"url": db_url})}
    )
    ids = seed(policy, 3)
    capsys.readouterr()

    assert run(policy, "reports", "list") == 0
    listed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {r["id"] for r in listed} == set(ids)
    assert run(policy, "reports", "list", "--delivery", "dead") == 0
    dead = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["id"], r["dead"], r["pending"]) for r in dead] == [(ids[0], 1, 0)]

    assert run(policy, "reports", "show", ids[1]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["comment"] == "c1" and shown["message"]["answer"]
    assert [d["state"] for d in shown["deliveries"]] == ["pending"]
    assert run(policy, "reports", "show", "rep_missing") == 1

    out = tmp_path / "export.csv"
    assert run(policy, "reports", "export", "--format", "csv", "-o", str(out)) == 0
    with out.open() as f:
        assert sorted(r["id"] for r in csv.DictReader(f)) == sorted(ids)
    assert run(policy, "reports", "export", "--until", "2000-01-01") == 0
    assert capsys.readouterr().out == ""

    assert run(policy, "reports", "retry", "--all") == 0
    assert json.loads(capsys.readouterr().out) == {"requeued": 1}

    # the first message is 100 days old: purge takes it (reports are recent: kept)
    assert run(policy, "purge") == 0
    assert json.loads(capsys.readouterr().out) == {"messages": 1, "reports": 0}
