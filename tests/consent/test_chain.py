"""Tamper evidence and erasure: verify() names the first broken record; erasure keeps it green."""

from __future__ import annotations

import pytest

from aiguard.services.consent import ConsentRecord, ConsentService
from aiguard.store import Database
from tests.consent.conftest import REQUIRED, identity

pytestmark = pytest.mark.anyio


async def _fill(service: ConsentService) -> list[ConsentRecord]:
    out: list[ConsentRecord] = []
    for i in range(4):
        out += await service.record(identity(f"{i:032x}"), REQUIRED, "granted")
    return out  # 8 records, seq 1..8


async def test_fresh_and_filled_chains_verify(service: ConsentService) -> None:
    report = await service.verify()
    assert report.ok and report.records == 0
    records = await _fill(service)
    report = await service.verify()
    assert report.ok and report.records == 8 and report.head_hash == records[-1].hash


@pytest.mark.parametrize(
    ("tamper", "broken_seq", "reason"),
    [
        ("UPDATE consent_records SET action = 'refused' WHERE seq = 3", 3, "edited"),
        (
            "UPDATE consent_records SET created_at = '2020-01-01T00:00:00.000000Z' WHERE seq = 5",
            5,
            "edited",
        ),
        ("UPDATE consent_records SET notice_version = '9' WHERE seq = 2", 2, "edited"),
        ("DELETE FROM consent_records WHERE seq = 4", 5, "deleted"),
        ("DELETE FROM consent_records WHERE seq = 1", 2, "deleted"),
        ("DELETE FROM consent_records WHERE seq = 8", 8, "deleted at the end"),
        # reorder: swap the positions of two records
        (
            "UPDATE consent_records SET seq = -3 WHERE seq = 3;"
            "UPDATE consent_records SET seq = 3 WHERE seq = 6;"
            "UPDATE consent_records SET seq = 6 WHERE seq = -3",
            3,
            "deleted, inserted or reordered",
        ),
        # move a grant to another subject (personal fields are outside the hash)
        (
            "UPDATE consent_records SET subject_id = '00000000000000000000000000000002'"
            " WHERE seq = 1",
            1,
            "personal fields",
        ),
        ("UPDATE consent_records SET ip_hash = NULL WHERE seq = 7", 7, "personal fields"),
    ],
)
async def test_tampering_is_named(
    service: ConsentService, db: Database, tamper: str, broken_seq: int, reason: str
) -> None:
    records = await _fill(service)
    async with db.transaction() as tx:
        for statement in tamper.split(";"):
            await tx.execute(statement)
    report = await service.verify()
    assert not report.ok
    assert report.broken_seq == broken_seq
    assert reason in report.reason
    if "at the end" in reason:  # the missing record is gone: only its position can be named
        assert report.broken_record_id is None
    elif "reordered" not in reason:
        assert report.broken_record_id == records[broken_seq - 1].record_id


async def test_erasure_removes_personal_data_and_keeps_the_chain(
    service: ConsentService, db: Database
) -> None:
    await _fill(service)
    subject = f"{1:032x}"
    await service.record(identity(subject), ["provider_processing"], "withdrawn")
    before = await service.subject_export(subject)
    assert [r["action"] for r in before["consent"]["records"]] == [
        "granted",
        "granted",
        "withdrawn",
    ]
    assert before["consent"]["status"]["provider_processing"]["status"] == "withdrawn"
    assert await service.check(subject) is not None

    assert await service.subject_erase(subject) == 3
    report = await service.verify()
    assert report.ok and report.records == 10  # 9 records + the erasure entry
    after = await service.subject_export(subject)
    assert after["consent"]["records"] == []
    assert not (await service.check(subject)).allowed
    assert await db.fetchone(
        "SELECT count(*) AS n FROM consent_records WHERE subject_id = ?", subject
    ) == {"n": 0}
    assert await db.fetchone(
        "SELECT count(*) AS n FROM consent_subject_keys WHERE subject_id = ?", subject
    ) == {"n": 0}
    erased = await db.fetchall(
        "SELECT ip_hash, ua_hash, erased_at FROM consent_records"
        " WHERE subject_id IS NULL AND action <> 'erased'"
    )
    assert len(erased) == 3
    assert all(r["ip_hash"] is None and r["ua_hash"] is None and r["erased_at"] for r in erased)
    # other subjects keep their data, and the chain keeps growing after an erasure
    assert (await service.check(f"{2:032x}")).allowed
    await service.record(identity(subject), REQUIRED, "granted")
    assert (await service.verify()).ok
    assert await service.subject_erase("f" * 32) == 0
    # putting personal data back onto an erased record is tampering too
    async with db.transaction() as tx:
        await tx.execute("UPDATE consent_records SET subject_id = ? WHERE seq = 3", f"{2:032x}")
    assert (await service.verify()).broken_seq == 3


async def test_erasure_racing_new_records_keeps_the_chain(db_url: str, db: Database) -> None:
    """Erase while the same subject is recording on another connection pool (another replica)."""
    import anyio

    from aiguard.policy.prompts import Catalogue
    from aiguard.store import open_database
    from tests.consent.conftest import make_policy

    other = open_database(db_url)
    policy, catalogue = make_policy(), Catalogue()
    a, b = ConsentService(db, policy, catalogue), ConsentService(other, policy, catalogue)
    try:
        for round_ in range(15):
            subject = f"{round_:032x}"
            async with anyio.create_task_group() as tg:
                for _ in range(3):
                    tg.start_soon(a.record, identity(subject), REQUIRED, "granted")
                tg.start_soon(b.subject_erase, subject)
        report = await a.verify()
        assert report.ok, report
    finally:
        await other.close()
