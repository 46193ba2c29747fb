"""ReportService against both backends: validation, ownership, updates, rate limit, provider."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from aiguard.policy import Policy
from aiguard.policy.prompts import Catalogue
from aiguard.services.records import RecordWriter
from aiguard.services.reports import (
    CATEGORIES,
    Conflict,
    InvalidReport,
    NotFound,
    RateLimited,
    ReportService,
    purge_reports,
)
from aiguard.store import Database
from tests.reports.conftest import identity, make_policy, make_record

pytestmark = pytest.mark.anyio

ALICE = "a" * 32
BOB = "b" * 32


async def service(db: Database, policy: Policy) -> tuple[ReportService, RecordWriter]:
    records = RecordWriter(db, policy)
    return ReportService(db, policy, Catalogue(), records), records


async def counts(db: Database) -> dict[str, int]:
    out = {}
    for table in ("aiguard_reports", "aiguard_report_events", "aiguard_outbox"):
        row = await db.fetchone(f"SELECT COUNT(*) AS n FROM {table}")
        assert row is not None
        out[table] = int(row["n"])
    return out


async def test_submit_writes_report_event_and_outbox_rows(db: Database, tmp_path: Any) -> None:
    policy = make_policy(
        webhook_url="http://127.0.0.1:9/hook", webhook_secret="s" * 16, jsonl_path=tmp_path / "r"
    )
    svc, records = await service(db, policy)
    rec = make_record(subject=ALICE)
    records.add(rec)  # still queued: submit must make it durable first
    notified: list[int] = []
    svc.notify = lambda: notified.append(1)
    report = await svc.submit(identity(ALICE), rec.message_id, "inaccurate", " wrong city ", None)
    assert report.id.startswith("rep_") and report.revision == 1 and report.status == "received"
    assert report.comment == "wrong city" and report.correction == ""
    assert notified == [1]
    assert records.pending == 0
    assert await counts(db) == {
        "aiguard_reports": 1,
        "aiguard_report_events": 1,
        "aiguard_outbox": 2,
    }
    ev = await db.fetchone("SELECT payload, idempotency_key FROM aiguard_report_events")
    assert ev is not None
    doc = json.loads(ev["payload"])
    assert doc["id"] == ev["idempotency_key"] == f"{report.id}.1"
    assert doc["type"] == "report.created"
    assert doc["report"]["category"] == "inaccurate"
    assert doc["message"]["answer"] == rec.answer
    assert doc["message"]["message_id"] == rec.message_id
    sinks = await db.fetchall("SELECT sink, state FROM aiguard_outbox ORDER BY sink")
    assert sinks == [{"sink": "jsonl", "state": "pending"}, {"sink": "webhook", "state": "pending"}]


@pytest.mark.parametrize(
    ("fields", "error", "field"),
    [
        ({"category": "wrong"}, InvalidReport, "category"),
        ({"category": None}, InvalidReport, "category"),
        ({"comment": "x" * 2001}, InvalidReport, "comment"),
        ({"comment": 5}, InvalidReport, "comment"),
        ({"correction": "y" * 4001}, InvalidReport, "correction"),
        ({"comment": "nul\x00"}, InvalidReport, "comment"),
        ({"message_id": "msg_unknown"}, NotFound, None),
        ({"message_id": 42}, NotFound, None),
        ({"message_id": "m" * 500}, NotFound, None),
        ({"subject": BOB}, NotFound, None),  # someone else's message: same as unknown
    ],
)
async def test_bad_input_is_rejected_and_nothing_is_stored(
    db: Database, fields: dict[str, Any], error: type[Exception], field: str | None
) -> None:
    svc, records = await service(db, make_policy())
    rec = make_record(subject=ALICE)
    records.add(rec)
    await records.flush()
    with pytest.raises(error) as info:
        await svc.submit(
            identity(fields.get("subject", ALICE)),
            fields.get("message_id", rec.message_id),
            fields.get("category", "inaccurate"),
            fields.get("comment", "c"),
            fields.get("correction"),
        )
    if field is not None:
        assert isinstance(info.value, InvalidReport) and info.value.field == field
    assert await counts(db) == {
        "aiguard_reports": 0,
        "aiguard_report_events": 0,
        "aiguard_outbox": 0,
    }


async def test_every_category_is_accepted(db: Database) -> None:
    svc, records = await service(db, make_policy(rate_limit=100))
    for category in CATEGORIES:
        rec = make_record(subject=ALICE)
        records.add(rec)
        report = await svc.submit(identity(ALICE), rec.message_id, category, "", "")
        assert report.category == category


async def test_resubmit_updates_and_unchanged_resubmit_is_a_no_op(db: Database) -> None:
    svc, records = await service(db, make_policy())
    rec = make_record(subject=ALICE)
    records.add(rec)
    first = await svc.submit(identity(ALICE), rec.message_id, "inaccurate", "wrong", "")
    again = await svc.submit(identity(ALICE), rec.message_id, "inaccurate", "wrong", "")
    assert again.id == first.id and again.revision == 1 and not again.changed
    await svc.resolve(first.id, "not_an_error", "It is correct.")
    updated = await svc.submit(identity(ALICE), rec.message_id, "outdated", "old", "Berlin")
    assert updated.id == first.id and updated.revision == 2 and updated.changed
    # an update reopens the report: the old resolution answered other words
    assert updated.status == "received" and updated.resolution() is None
    status = await svc.status(identity(ALICE), first.id)
    assert (status.category, status.correction, status.revision) == ("outdated", "Berlin", 2)
    rows = await db.fetchall("SELECT type, idempotency_key FROM aiguard_report_events ORDER BY id")
    assert rows == [
        {"type": "report.created", "idempotency_key": f"{first.id}.1"},
        {"type": "report.updated", "idempotency_key": f"{first.id}.2"},
    ]


async def test_rate_limit_per_subject_in_the_database(db: Database) -> None:
    policy = make_policy(rate_limit=3, rate_window_seconds=3600)
    svc, records = await service(db, policy)
    # a second service on the same database stands in for another replica
    other, other_records = await service(db, policy)
    recs = [make_record(subject=ALICE) for _ in range(5)]
    for rec in recs:
        records.add(rec)
    await records.flush()
    for rec in recs[:2]:
        await svc.submit(identity(ALICE), rec.message_id, "inaccurate", "", "")
    await other.submit(identity(ALICE), recs[2].message_id, "inaccurate", "", "")
    with pytest.raises(RateLimited) as info:
        await other.submit(identity(ALICE), recs[3].message_id, "inaccurate", "", "")
    assert 1 <= info.value.retry_after <= 3601
    assert (await counts(db))["aiguard_reports"] == 3
    # Bob has his own budget
    bob_rec = make_record(subject=BOB)
    other_records.add(bob_rec)
    await other.submit(identity(BOB), bob_rec.message_id, "other", "", "")


async def test_status_hides_other_subjects_reports(db: Database) -> None:
    svc, records = await service(db, make_policy())
    rec = make_record(subject=ALICE)
    records.add(rec)
    report = await svc.submit(identity(ALICE), rec.message_id, "privacy", "", "")
    with pytest.raises(NotFound):
        await svc.status(identity(BOB), report.id)
    with pytest.raises(NotFound):
        await svc.status(identity(ALICE), "rep_nope")


async def test_pull_feed_cursor_marks_forwarded_and_resolution(db: Database) -> None:
    svc, records = await service(db, make_policy(rate_limit=100))
    made = []
    for _ in range(5):
        rec = make_record(subject=ALICE)
        records.add(rec)
        made.append(await svc.submit(identity(ALICE), rec.message_id, "inaccurate", "x", ""))
    items, cursor = await svc.pull(0, 3)
    assert [i["report"]["id"] for i in items] == [r.id for r in made[:3]]
    more, cursor2 = await svc.pull(cursor, 3)
    assert [i["report"]["id"] for i in more] == [r.id for r in made[3:]]
    assert (await svc.pull(cursor2, 3)) == ([], cursor2)
    assert (await svc.status(identity(ALICE), made[0].id)).status == "forwarded"

    with pytest.raises(InvalidReport):
        await svc.resolve(made[0].id, "nonsense", "")
    with pytest.raises(NotFound):
        await svc.resolve("rep_nope", "corrected", "")
    with pytest.raises(Conflict):
        await svc.resolve(made[0].id, "corrected", "Fixed.", revision=7)
    resolved = await svc.resolve(made[0].id, "corrected", "We fixed the answer.", revision=1)
    seen = await svc.status(identity(ALICE), made[0].id)
    assert seen.status == "resolved" == resolved.status
    assert seen.public()["resolution"]["reply"] == "We fixed the answer."
    assert seen.public()["resolution"]["outcome"] == "corrected"


async def test_purge_keeps_reports_with_pending_deliveries(db: Database, tmp_path: Any) -> None:
    policy = make_policy(jsonl_path=tmp_path / "r.jsonl", rate_limit=100)
    svc, records = await service(db, policy)
    done, waiting = make_record(subject=ALICE), make_record(subject=ALICE)
    records.add(done)
    records.add(waiting)
    r_done = await svc.submit(identity(ALICE), done.message_id, "other", "", "")
    await svc.submit(identity(ALICE), waiting.message_id, "other", "", "")
    async with db.transaction() as tx:
        await tx.execute(
            "UPDATE aiguard_outbox SET state = 'delivered' WHERE report_id = ?", r_done.id
        )
    assert await purge_reports(db, time.time() + 1) == 1
    assert await counts(db) == {
        "aiguard_reports": 1,
        "aiguard_report_events": 1,
        "aiguard_outbox": 1,
    }


async def test_pulling_an_old_revision_does_not_forward_the_new_one(db: Database) -> None:
    svc, records = await service(db, make_policy())
    rec = make_record(subject=ALICE)
    records.add(rec)
    first = await svc.submit(identity(ALICE), rec.message_id, "inaccurate", "a", "")
    await svc.submit(identity(ALICE), rec.message_id, "inaccurate", "b", "")
    items, cursor = await svc.pull(0, 1)  # only revision 1
    assert [i["report"]["revision"] for i in items] == [1]
    assert (await svc.status(identity(ALICE), first.id)).status == "received"
    items, _ = await svc.pull(cursor, 10)
    assert [i["type"] for i in items] == ["report.updated"]
    report = await svc.status(identity(ALICE), first.id)
    assert (report.status, report.comment, report.revision) == ("forwarded", "b", 2)
