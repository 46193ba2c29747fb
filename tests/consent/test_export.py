"""Exports: CSV, JSON Lines and Kantara v1.1 receipts, filtered and streamed row by row."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from aiguard.policy.prompts import Catalogue
from aiguard.services.consent import ConsentService
from aiguard.services.consent_export import RECORD_FIELDS
from aiguard.store import Database, Row
from tests.consent.conftest import REQUIRED, identity, make_policy

pytestmark = pytest.mark.anyio


async def _collect(chunks: AsyncIterator[str]) -> str:
    return "".join([c async for c in chunks])


async def test_csv_and_jsonl_hold_every_record(service: ConsentService) -> None:
    a = await service.record(identity("a" * 32), REQUIRED, "granted", "widget")
    b = await service.record(identity("b" * 32), ["ai_interaction"], "refused")
    rows = list(csv.DictReader(io.StringIO(await _collect(service.export("csv")))))
    assert [r["record_id"] for r in rows] == [r.record_id for r in a + b]
    assert list(rows[0]) == list(RECORD_FIELDS)
    assert rows[0]["method"] == "widget" and rows[2]["action"] == "refused"
    assert rows[0]["erased_at"] == ""
    lines = (await _collect(service.export("jsonl"))).splitlines()
    assert [json.loads(line) for line in lines] == [r.as_dict() for r in a + b]
    only_b = await _collect(service.export("jsonl", subject_id="b" * 32))
    assert [json.loads(line)["subject_id"] for line in only_b.splitlines()] == ["b" * 32]


async def test_since_and_until_filter_by_server_time(service: ConsentService) -> None:
    [first] = await service.record(identity(), ["ai_interaction"], "granted")
    [second] = await service.record(identity(), ["ai_interaction"], "withdrawn")
    out = await _collect(service.export("jsonl", since=second.created_at))
    assert [json.loads(x)["record_id"] for x in out.splitlines()] == [second.record_id]
    out = await _collect(service.export("jsonl", until=second.created_at))
    assert [json.loads(x)["record_id"] for x in out.splitlines()] == [first.record_id]
    assert await _collect(service.export("jsonl", since="2999-01-01")) == ""
    everything = await _collect(service.export("jsonl", since="2000-01-01T00:00:00+02:00"))
    assert len(everything.splitlines()) == 2


async def test_receipts_follow_kantara_v1_1(db: Database, catalogue: Catalogue) -> None:
    policy = make_policy(
        jurisdiction="DE",
        policy_url="https://example.com/privacy",
        controller={"name": "Example GmbH", "email": "privacy@example.com"},
    )
    service = ConsentService(db, policy, catalogue)
    granted = await service.record(identity(locale="de"), REQUIRED, "granted", "widget")
    await service.record(identity(), ["transcript_retention"], "refused")  # not a grant
    await service.record(identity("b" * 32), ["transcript_retention"], "granted")
    await service.subject_erase("b" * 32)  # no principal any more: no receipt
    lines = (await _collect(service.export("receipt"))).splitlines()
    assert len(lines) == 1
    receipt: dict[str, Any] = json.loads(lines[0])
    assert receipt["version"] == "KI-CR-v1.1.0"
    assert receipt["jurisdiction"] == "DE"
    assert isinstance(receipt["consentTimestamp"], int)
    assert receipt["collectionMethod"] == "widget"
    assert receipt["consentReceiptID"] == granted[0].receipt_id
    assert receipt["language"] == "de"
    assert receipt["piiPrincipalId"] == "a" * 32
    assert receipt["piiControllers"][0]["piiController"] == "Example GmbH"
    assert receipt["policyUrl"] == "https://example.com/privacy"
    [svc] = receipt["services"]
    assert [p["purpose"] for p in svc["purposes"]] == REQUIRED
    first = svc["purposes"][0]
    assert set(first) >= {
        "purpose",
        "purposeCategory",
        "consentType",
        "piiCategory",
        "primaryPurpose",
        "termination",
        "thirdPartyDisclosure",
    }
    assert first["consentType"] == "EXPLICIT" and "/aiguard/consent" in first["termination"]
    assert svc["purposes"][1]["thirdPartyDisclosure"] is True
    assert svc["purposes"][1]["thirdPartyName"]
    assert receipt["sensitive"] is False and receipt["spiCat"] == []


class CountingDatabase:
    """Wraps a Database to count rows its ``iterate`` has produced so far."""

    def __init__(self, inner: Database) -> None:
        self.inner = inner
        self.dialect = inner.dialect
        self.url = inner.url
        self.fetched = 0

    async def iterate(self, sql: str, *args: Any, batch: int = 1000) -> AsyncIterator[Row]:
        async for row in self.inner.iterate(sql, *args, batch=batch):
            self.fetched += 1
            yield row

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


async def test_export_streams_before_reading_everything(db: Database, catalogue: Catalogue) -> None:
    purposes = [f"p{i:02d}" for i in range(50)]
    policy = make_policy(purposes=purposes, required=[], purpose_info={})
    writer = ConsentService(db, policy, catalogue)
    for i in range(40):  # 2,000 records, 50 per transaction
        await writer.record(identity(f"{i:032x}"), purposes, "granted")
    counting = CountingDatabase(db)
    service = ConsentService(counting, policy, catalogue)
    for fmt in ("csv", "jsonl", "receipt"):
        counting.fetched = 0
        chunks = service.export(fmt, batch=100)
        first = await anext(chunks)
        assert first
        assert counting.fetched <= 100, f"{fmt}: {counting.fetched} rows read before first line"
        await chunks.aclose()  # type: ignore[attr-defined]
    total = 0
    counting.fetched = 0
    async for _ in service.export("jsonl", batch=100):
        total += 1
    assert total == 2000 and counting.fetched == 2000
