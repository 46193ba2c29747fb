"""Regressions found in review of the consent ledger: each failed before its fix."""

from __future__ import annotations

import pytest

from aiguard.services.consent import ConsentService, to_timestamp
from aiguard.store import Database
from tests.consent.conftest import ADMIN, REQUIRED, identity
from tests.consent.test_api import client  # noqa: F401  (fixture)

pytestmark = pytest.mark.anyio
SUBJ = "b" * 32


async def test_verify_ignores_forged_rows_past_the_head(
    service: ConsentService, db: Database
) -> None:
    """A row appended after the head (head not updated) passes verify() but the gate obeys it."""
    await service.record(identity("a" * 32), REQUIRED, "granted")  # seq 1..2
    assert not (await service.check(SUBJ)).allowed
    base = dict(
        receipt_id="rcpt_x",
        subject_id=SUBJ,
        action="granted",
        notice_id="consent_notice",
        notice_version="1",
        notice_locale="en",
        notice_sha256="0" * 64,
        jurisdiction="EU",
        method="api",
        created_at="2030-01-01T00:00:00.000000Z",
        commitment="f" * 64,
        prev_hash="0" * 64,
        hash="0" * 64,
    )
    async with db.transaction() as tx:
        for i, p in enumerate(REQUIRED):
            await tx.execute(
                "INSERT INTO consent_records (seq, record_id, receipt_id, subject_id, purpose,"
                " action, notice_id, notice_version, notice_locale, notice_sha256, jurisdiction,"
                " method, created_at, commitment, prev_hash, hash)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                10 + i,
                f"cons_forged{i}",
                base["receipt_id"],
                SUBJ,
                p,
                "granted",
                base["notice_id"],
                "1",
                "en",
                base["notice_sha256"],
                base["jurisdiction"],
                "api",
                base["created_at"],
                base["commitment"],
                base["prev_hash"],
                base["hash"],
            )
    service._cache.clear()
    assert (await service.check(SUBJ)).allowed  # the gate honours the forged grant
    report = await service.verify()
    assert not report.ok, f"verify() missed forged rows past the head: {report}"


async def test_verify_misses_fake_erasure_of_one_withdrawal(
    service: ConsentService, db: Database
) -> None:
    """Nulling one withdrawal's personal columns resurrects the grant; verify must notice.

    Fixed by erasure entries in the chain (consent migration v2); the name is kept from when
    this was a strict xfail.
    """
    s = "c" * 32
    await service.record(identity(s), REQUIRED, "granted")
    withdrawn = await service.record(identity(s), REQUIRED, "withdrawn")
    assert not (await service.check(s)).allowed
    async with db.transaction() as tx:
        await tx.execute(
            "UPDATE consent_records SET subject_id = NULL, ip_hash = NULL, ua_hash = NULL"
            " WHERE subject_id = ? AND action = 'withdrawn'",
            s,
        )
    service._cache.clear()
    assert (await service.check(s)).allowed  # subject is back to "allowed" after withdrawing
    report = await service.verify()
    assert not report.ok, f"verify() missed a partially-erased subject: {report}"
    assert report.broken_record_id == withdrawn[0].record_id
    assert report.broken_seq == withdrawn[0].seq
    assert "fake erasure" in report.reason


def test_to_timestamp_overflow_is_not_valueerror() -> None:
    """consent_api.export and cli_consent._export catch only ValueError -> 500 / traceback."""
    with pytest.raises(ValueError):
        to_timestamp("0001-01-01T00:00:00+01:00")


async def test_admin_export_out_of_range_since_is_400(client) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    r = await client.get(
        "/aiguard/admin/consent/export?since=0001-01-01T00:00:00%2B01:00",
        headers={"authorization": "Bearer " + ADMIN},
    )
    assert r.status_code in {400, 422}, r.status_code
