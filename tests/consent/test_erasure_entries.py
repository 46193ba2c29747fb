"""Erasure entries: every erasure is a chain entry naming the records it erased (migration v2)."""

from __future__ import annotations

import json
import secrets
import uuid

import pytest

from aiguard.policy import Policy
from aiguard.policy.prompts import Catalogue
from aiguard.services import consent_chain as chain
from aiguard.services.consent import MIGRATIONS, ConsentService, utc_now
from aiguard.services.consent_types import ConsentRecord
from aiguard.store import Database, open_database
from tests.consent.conftest import REQUIRED, identity

pytestmark = pytest.mark.anyio
A, B, C = "a" * 32, "b" * 32, "c" * 32


async def _lines(service: ConsentService, fmt: str) -> list[str]:
    return [chunk async for chunk in service.export(fmt)]  # type: ignore[arg-type]


async def _exec(db: Database, sql: str, *args: object) -> None:
    async with db.transaction() as tx:
        await tx.execute(sql, *args)


async def _null_personal(db: Database, record_id: str) -> None:
    await _exec(
        db,
        "UPDATE consent_records SET subject_id = NULL, ip_hash = NULL, ua_hash = NULL"
        " WHERE record_id = ?",
        record_id,
    )


async def test_legit_erasure_writes_one_entry_and_verifies(
    service: ConsentService, db: Database
) -> None:
    first = await service.record(identity(A), REQUIRED, "granted")
    withdrawn = await service.record(identity(A), REQUIRED[:1], "withdrawn")
    await service.record(identity(B), REQUIRED, "granted")
    assert await service.subject_erase(A) == 3
    report = await service.verify()
    assert report.ok, report
    assert report.records == 6 and report.legacy_erasures == 0
    entry = await db.fetchone("SELECT * FROM consent_records WHERE action = 'erased'")
    assert entry is not None and entry["seq"] == 6 and entry["purpose"] == "*"
    assert entry["subject_id"] is None and entry["ip_hash"] is None and entry["ua_hash"] is None
    ids = sorted(r.record_id for r in [*first, *withdrawn])
    assert json.loads(entry["erased_ids"]) == ids
    assert entry["commitment"] == chain.erasure_commitment(ids)
    # the gate and the status ignore the entry; B is untouched, A starts from scratch
    assert (await service.check(B)).allowed
    assert not (await service.check(A)).allowed
    assert (await service.subject_export(A))["consent"]["records"] == []
    # jsonl and csv show the entry, receipts do not
    jsonl = [json.loads(line) for line in await _lines(service, "jsonl")]
    assert [r["action"] for r in jsonl][-1] == "erased"
    assert jsonl[-1]["erased_ids"] == entry["erased_ids"]
    csv_lines = await _lines(service, "csv")
    assert len(csv_lines) == 1 + 6 and ",erased," in csv_lines[-1]
    receipts = [json.loads(line) for line in await _lines(service, "receipt")]
    assert [r["piiPrincipalId"] for r in receipts] == [B]
    # the entry round-trips as a record
    assert ConsentRecord(**{k: entry[k] for k in entry}).action == "erased"


async def test_erasing_an_unknown_subject_writes_no_entry(service: ConsentService) -> None:
    await service.record(identity(A), REQUIRED, "granted")
    assert await service.subject_erase(B) == 0
    report = await service.verify()
    assert report.ok and report.records == 2


async def test_fake_erasure_of_one_row_is_named(service: ConsentService, db: Database) -> None:
    await service.record(identity(A), REQUIRED, "granted")
    await service.subject_erase(A)  # a real erasure before: its rows stay covered
    await service.record(identity(B), REQUIRED, "granted")
    withdrawn = await service.record(identity(B), REQUIRED, "withdrawn")
    await _null_personal(db, withdrawn[1].record_id)
    report = await service.verify()
    assert not report.ok
    assert report.broken_record_id == withdrawn[1].record_id
    assert report.broken_seq == withdrawn[1].seq
    assert "fake erasure" in report.reason


async def test_erase_then_grants_and_a_second_erasure(service: ConsentService) -> None:
    await service.record(identity(A), REQUIRED, "granted")
    await service.record(identity(B), REQUIRED, "granted")
    assert await service.subject_erase(A) == 2
    await service.record(identity(C), REQUIRED, "granted")
    await service.record(identity(A), REQUIRED[:1], "granted")  # A again, with a new key
    assert (await service.verify()).ok
    assert await service.subject_erase(B) == 2
    assert await service.subject_erase(A) == 1
    report = await service.verify()
    assert report.ok, report
    assert report.records == 2 + 2 + 1 + 2 + 1 + 1 + 1
    assert (await service.check(C)).allowed


async def test_deleting_an_erasure_entry_is_detected(service: ConsentService, db: Database) -> None:
    await service.record(identity(A), REQUIRED, "granted")
    await service.subject_erase(A)  # entry at seq 3
    await service.record(identity(B), REQUIRED, "granted")
    await _exec(db, "DELETE FROM consent_records WHERE action = 'erased'")
    report = await service.verify()
    assert not report.ok and report.broken_seq == 4
    assert "missing (deleted)" in report.reason


async def test_deleting_the_last_entry_or_editing_its_list_is_detected(
    service: ConsentService, db: Database
) -> None:
    rows = await service.record(identity(A), REQUIRED, "granted")
    await service.subject_erase(A)
    # dropping one id from the list (to disown a record) breaks the entry's commitment
    await _exec(
        db,
        "UPDATE consent_records SET erased_ids = ? WHERE action = 'erased'",
        json.dumps([rows[0].record_id]),
    )
    report = await service.verify()
    assert not report.ok and report.broken_seq == 3
    assert "commitment" in report.reason
    # deleting it entirely (it is the last entry) is caught by the head
    await _exec(db, "DELETE FROM consent_records WHERE action = 'erased'")
    report = await service.verify()
    assert not report.ok and "deleted at the end" in report.reason


# ------------------------------------------------------------------ upgrade from v1 ----------


async def _v1_record(db: Database, subject: str, purpose: str, action: str) -> None:
    """Write one record as a v1 ledger did (no erased_ids column)."""
    async with db.transaction(exclusive=True) as tx:
        await tx.execute(
            "INSERT INTO consent_subject_keys (subject_id, key, created_at) VALUES (?, ?, ?)"
            " ON CONFLICT (subject_id) DO NOTHING",
            subject,
            secrets.token_hex(32),
            utc_now(),
        )
        key = await tx.fetchone(
            "SELECT key FROM consent_subject_keys WHERE subject_id = ?", subject
        )
        head = await tx.fetchone("SELECT seq, hash FROM consent_chain_head WHERE id = 1")
        assert key is not None and head is not None
        record_id = "cons_" + uuid.uuid4().hex
        row = {
            "seq": int(head["seq"]) + 1,
            "record_id": record_id,
            "receipt_id": "rcpt_" + uuid.uuid4().hex,
            "subject_id": subject,
            "purpose": purpose,
            "action": action,
            "notice_id": "consent_notice",
            "notice_version": "1",
            "notice_locale": "en",
            "notice_sha256": "0" * 64,
            "jurisdiction": "EU",
            "method": "api",
            "created_at": utc_now(),
            "ip_hash": "1" * 64,
            "ua_hash": "2" * 64,
            "commitment": chain.commitment(
                bytes.fromhex(str(key["key"])), record_id, subject, "1" * 64, "2" * 64
            ),
            "prev_hash": str(head["hash"]),
        }
        row["hash"] = chain.record_hash(str(head["hash"]), row)
        await tx.execute(
            f"INSERT INTO consent_records ({', '.join(row)})"
            f" VALUES ({', '.join('?' for _ in row)})",
            *row.values(),
        )
        await tx.execute(
            "UPDATE consent_chain_head SET seq = ?, hash = ? WHERE id = 1", row["seq"], row["hash"]
        )


async def test_upgrade_keeps_v1_erasures_as_legacy(
    db_url: str, policy: Policy, catalogue: Catalogue
) -> None:
    db = open_database(db_url)
    await db.connect()
    try:
        await db.migrate(MIGRATIONS[:1])
        for p in REQUIRED:
            await _v1_record(db, A, p, "granted")
            await _v1_record(db, B, p, "granted")
        async with db.transaction(exclusive=True) as tx:  # erasure as v1 did it: no entry
            await tx.execute("DELETE FROM consent_subject_keys WHERE subject_id = ?", A)
            await tx.execute(
                "UPDATE consent_records SET subject_id = NULL, ip_hash = NULL, ua_hash = NULL,"
                " erased_at = ? WHERE subject_id = ?",
                utc_now(),
                A,
            )
        assert [m.version for m in await db.migrate(MIGRATIONS)] == [2]
        service = ConsentService(db, policy, catalogue)
        report = await service.verify()
        assert report.ok and report.records == 4 and report.legacy_erasures == 2, report
        assert (await service.check(B)).allowed  # rows and the subject index survived
        # after the upgrade erasures need entries: a real one passes, a fake one does not
        await service.subject_erase(B)
        rows = await service.record(identity(C), REQUIRED, "granted")
        assert (await service.verify()).ok
        await _null_personal(db, rows[0].record_id)
        report = await service.verify()
        assert not report.ok and report.broken_record_id == rows[0].record_id
        assert report.legacy_erasures == 2
    finally:
        await db.close()
