"""Data-subject access and erasure for message records and reports, on both backends."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import pytest

from aiguard.cli import main
from aiguard.policy import Policy
from aiguard.policy.prompts import Catalogue
from aiguard.services import records, reports
from aiguard.services.outbox import OutboxWorker
from aiguard.services.records import RecordWriter
from aiguard.services.reports import ReportService
from aiguard.services.sinks import build_sinks
from aiguard.store import Database, open_database
from tests.reports.conftest import identity, make_policy, make_record

ALICE = "a" * 32
BOB = "b" * 32


def policy_for(tmp_path: Path) -> Policy:
    return make_policy(jsonl_path=tmp_path / "reports.jsonl", rate_limit=100)


def texts(subject: str) -> dict[str, str]:
    """Strings only this subject's data contains (one per kind of personal data)."""
    tag = subject[:4]
    return {
        "subject": subject,
        "conversation": f"conv-{tag}-0123456789abcdef0123456789",
        "answer": f"The moon is made of cheese, {tag}-answer.",
        "comment": f"{tag}-comment: it is rock",
        "correction": f"{tag}-correction: basalt and regolith",
        "reply": f"{tag}-reply: thanks, fixed",
    }


async def seed(db: Database, policy: Policy) -> dict[str, list[str]]:
    """Alice and Bob: two messages and two reports each, the first delivered and resolved, the
    second pending delivery."""
    writer = RecordWriter(db, policy)
    await writer.start()
    svc = ReportService(db, policy, Catalogue(), writer)
    await svc.start()
    worker = OutboxWorker(db, policy, build_sinks(policy))
    ids: dict[str, list[str]] = {ALICE: [], BOB: []}
    for i in range(2):
        for subject in (ALICE, BOB):
            t = texts(subject)
            rec = make_record(subject=subject, conversation=t["conversation"], answer=t["answer"])
            writer.add(rec)
            who = identity(subject, t["conversation"])
            rep = await svc.submit(who, rec.message_id, "inaccurate", t["comment"], t["correction"])
            ids[subject].append(rep.id)
        if i == 0:
            assert await worker.run_once() == 2
            for subject in (ALICE, BOB):
                await svc.resolve(ids[subject][0], "corrected", texts(subject)["reply"])
    await writer.stop()
    return ids


async def dump(db: Database) -> str:
    """The text of every row of every table in the database (schema of this test only)."""
    if db.dialect == "sqlite":
        sql = "SELECT name FROM sqlite_master WHERE type = 'table'"
    else:
        sql = (
            "SELECT table_name AS name FROM information_schema.tables"
            " WHERE table_schema = current_schema()"
        )
    tables = [str(r["name"]) for r in await db.fetchall(sql)]
    ours = {"aiguard_messages", "aiguard_reports", "aiguard_report_events", "aiguard_outbox"}
    assert ours <= set(tables)
    rows = {t: await db.fetchall(f'SELECT * FROM "{t}"') for t in tables}
    return json.dumps(rows, default=str, ensure_ascii=False)


async def export(db: Database, subject: str) -> dict[str, Any]:
    return {
        **(await records.subject_export(db, subject)),
        **(await reports.subject_export(db, subject)),
    }


@pytest.mark.anyio
async def test_export_then_erase(db: Database, tmp_path: Path) -> None:
    policy = policy_for(tmp_path)
    alice_reports = (await seed(db, policy))[ALICE]
    a, b = texts(ALICE), texts(BOB)

    # access: Alice's data only, complete, JSON-serialisable
    got = await export(db, ALICE)
    text = json.dumps(got, ensure_ascii=False)
    assert all(v in text for v in a.values())
    assert not any(v in text for v in b.values())
    assert [m["subject_id"] for m in got["messages"]] == [ALICE, ALICE]
    assert {m["answer"] for m in got["messages"]} == {a["answer"]}
    assert sorted(r["id"] for r in got["reports"]) == sorted(alice_reports)
    first = next(r for r in got["reports"] if r["id"] == alice_reports[0])
    assert first["status"] == "resolved" and first["resolution"]["reply"] == a["reply"]
    assert first["message"]["answer"] == a["answer"]
    assert [e["document"]["report"]["comment"] for e in first["events"]] == [a["comment"]]
    assert [d["state"] for d in first["deliveries"]] == ["delivered"]
    second = next(r for r in got["reports"] if r["id"] == alice_reports[1])
    assert [d["state"] for d in second["deliveries"]] == ["pending"]

    bob_before = await export(db, BOB)
    # Bob's pending report is one more outbox row; the rest is Alice's
    erased_reports = await reports.subject_erase(db, ALICE)
    assert await records.subject_erase(db, ALICE) == 2
    assert erased_reports == 2 + 2 + 2  # outbox rows and events deleted, reports anonymised

    everything = await dump(db)
    for kind, value in a.items():
        assert value not in everything, f"Alice's {kind} survived erasure"
    assert all(v in everything for v in b.values())
    assert await export(db, BOB) == bob_before
    assert await export(db, ALICE) == {"messages": [], "reports": []}

    # the reports still count, anonymously, with their category and outcome
    left = await db.fetchall(
        "SELECT id, message_id, category, status, outcome, comment, message FROM aiguard_reports"
        " WHERE subject_id = ? ORDER BY status",
        reports.ERASED,
    )
    assert [(r["category"], r["status"], r["outcome"]) for r in left] == [
        ("inaccurate", "received", None),
        ("inaccurate", "resolved", "corrected"),
    ]
    assert not {r["id"] for r in left} & set(alice_reports)
    assert all(r["comment"] == "" and r["message"] == "{}" for r in left)

    # Alice's pending report is never delivered; Bob's still is
    sink_file = tmp_path / "reports.jsonl"
    delivered_before = sink_file.read_text(encoding="utf-8").splitlines()
    worker = OutboxWorker(db, policy, build_sinks(policy))
    assert await worker.run_once() == 1
    new = sink_file.read_text(encoding="utf-8").splitlines()[len(delivered_before) :]
    assert len(new) == 1 and b["comment"] in new[0] and ALICE not in new[0]
    assert await worker.run_once() == 0

    # idempotent
    assert await records.subject_erase(db, ALICE) == 0
    assert await reports.subject_erase(db, ALICE) == 0
    assert await reports.subject_erase(db, reports.ERASED) == 0


def test_cli_subject_export_erase(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy_file = tmp_path / "policy.toml"
    policy_file.write_text(
        f'[storage]\nurl = "{db_url}"\n\n[identity]\nsecret = "{"s" * 32}"\n',
        encoding="utf-8",
    )
    policy = policy_for(tmp_path)

    async def go() -> None:
        db = open_database(db_url)
        await db.connect()
        try:
            await seed(db, policy)
        finally:
            await db.close()

    anyio.run(go)
    p = ["--policy", str(policy_file)]

    assert main([*p, "subject", "export", ALICE]) == 0
    data = json.loads(capsys.readouterr().out)
    assert len(data["records"]["messages"]) == 2
    assert len(data["reports"]["reports"]) == 2
    assert BOB not in json.dumps(data)

    assert main([*p, "subject", "erase", ALICE]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out == {
        "subject_id": ALICE,
        "erased": {"consent": 0, "records": 2, "reports": 6},
    }
    assert main([*p, "subject", "erase", ALICE]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["erased"] == {"consent": 0, "records": 0, "reports": 0}

    assert main([*p, "subject", "export", ALICE]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["records"] == {"messages": []} and data["reports"] == {"reports": []}
    assert main([*p, "subject", "export", BOB]) == 0
    assert len(json.loads(capsys.readouterr().out)["reports"]["reports"]) == 2
