"""Turn ledger rows into export lines: CSV, JSON Lines, Kantara Consent Receipts v1.1.

Pure and row-at-a-time, so exports stream in constant memory whatever the ledger size.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from aiguard.policy.models import Policy

RECORD_FIELDS = (
    "seq",
    "record_id",
    "receipt_id",
    "subject_id",
    "purpose",
    "action",
    "notice_id",
    "notice_version",
    "notice_locale",
    "notice_sha256",
    "jurisdiction",
    "method",
    "created_at",
    "ip_hash",
    "ua_hash",
    "commitment",
    "prev_hash",
    "hash",
    "erased_at",
    "erased_ids",
)
KANTARA_VERSION = "KI-CR-v1.1.0"


class _Line:
    """A one-line sink for ``csv.writer`` (it wants a file; we want a string per row)."""

    def __init__(self) -> None:
        self.buf = io.StringIO()

    def take(self) -> str:
        value = self.buf.getvalue()
        self.buf.seek(0)
        self.buf.truncate()
        return value


class CsvFormatter:
    def __init__(self) -> None:
        self._line = _Line()
        self._writer = csv.writer(self._line.buf, lineterminator="\n")

    def header(self) -> str:
        self._writer.writerow(RECORD_FIELDS)
        return self._line.take()

    def row(self, row: Mapping[str, Any]) -> str:
        self._writer.writerow(["" if row[f] is None else row[f] for f in RECORD_FIELDS])
        return self._line.take()


def jsonl_line(row: Mapping[str, Any]) -> str:
    return json.dumps({f: row[f] for f in RECORD_FIELDS}, ensure_ascii=False) + "\n"


def _epoch_seconds(created_at: str) -> int:
    return int(datetime.fromisoformat(created_at.replace("Z", "+00:00")).timestamp())


class ReceiptBuilder:
    """Groups the granted rows of one ``record()`` call (adjacent in seq order) into one receipt."""

    def __init__(self, policy: Policy) -> None:
        c = policy.consent
        self._policy = policy
        controller: dict[str, Any] = {
            "piiController": c.controller.name or policy.provider,
            "onBehalf": False,
            "contact": c.controller.contact,
            # v1.1 uses a schema.org PostalAddress-shaped object here
            "address": {
                "streetAddress": c.controller.address,
                "addressCountry": c.controller.country,
            },
            "email": c.controller.email,
            "phone": c.controller.phone,
        }
        if c.controller.url:
            controller["piiControllerUrl"] = c.controller.url
        self._controllers = [controller]
        self._service = c.service or policy.provider
        self._rows: list[Mapping[str, Any]] = []

    def _purpose(self, name: str) -> dict[str, Any]:
        from aiguard.policy.consent import PurposeInfo

        info = self._policy.consent.purpose_info.get(name) or PurposeInfo()
        out: dict[str, Any] = {
            "purpose": name,
            "purposeCategory": list(info.category),
            "consentType": "EXPLICIT",
            "piiCategory": list(info.pii_categories),
            "primaryPurpose": info.primary,
            "termination": info.termination.replace("{prefix}", self._policy.prefix),
            "thirdPartyDisclosure": info.third_party_disclosure,
        }
        if info.third_party_disclosure and info.third_party_name:
            out["thirdPartyName"] = info.third_party_name
        return out

    def _receipt(self) -> str:
        first = self._rows[0]
        receipt = {
            "version": KANTARA_VERSION,
            "jurisdiction": first["jurisdiction"],
            "consentTimestamp": _epoch_seconds(first["created_at"]),
            "collectionMethod": first["method"],
            "consentReceiptID": first["receipt_id"],
            "language": first["notice_locale"],
            "piiPrincipalId": first["subject_id"],
            "piiControllers": self._controllers,
            "policyUrl": self._policy.consent.policy_url,
            "services": [
                {
                    "service": self._service,
                    "purposes": [self._purpose(str(r["purpose"])) for r in self._rows],
                }
            ],
            "sensitive": self._policy.consent.sensitive,
            "spiCat": list(self._policy.consent.spi_categories),
        }
        self._rows = []
        return json.dumps(receipt, ensure_ascii=False) + "\n"

    def feed(self, row: Mapping[str, Any]) -> str | None:
        """Add a granted row; returns the previous receipt once a new receipt id starts."""
        out = None
        if self._rows and self._rows[0]["receipt_id"] != row["receipt_id"]:
            out = self._receipt()
        self._rows.append(row)
        return out

    def flush(self) -> str | None:
        return self._receipt() if self._rows else None
