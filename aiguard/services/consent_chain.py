"""The consent ledger's hash chain and personal-data commitments (pure functions, no I/O).

Each record's ``hash`` is ``sha256(prev_hash + "\\n" + canonical_json(payload))`` where the
payload holds only non-personal fields plus ``commitment``. The personal fields (subject id,
evidence hashes) are bound to the record by
``commitment = HMAC-SHA256(subject_key, canonical_json(record_id, subject_id, ip_hash, ua_hash))``
with a random key per subject. Erasing a subject deletes that key and nulls the personal columns:
every hash still verifies, and the commitment left behind can no longer be linked to anyone
(crypto-shredding). While the key exists, ``verify`` also recomputes the commitment, so moving a
grant to another subject or editing its evidence is detected too.

Erasure is itself a chain entry (``action == "erased"``) whose ``commitment`` is
``erasure_commitment(ids)`` over the sorted record ids it erased (stored in ``erased_ids``).
``verify`` accepts a record without personal fields only if a later erasure entry names it, so
nulling the personal fields of a withdrawal by hand (which would revive an earlier grant at the
gate) is reported as a fake erasure.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from typing import Any

from aiguard.services.consent_types import VerifyReport

GENESIS = "0" * 64
ERASED = "erased"  # the action of an erasure entry
ERASED_PURPOSE = "*"
PAYLOAD_VERSION = 1
# the fields the chain hash covers; everything personal stays out (see module docstring)
HASHED_FIELDS = (
    "seq",
    "record_id",
    "receipt_id",
    "purpose",
    "action",
    "notice_id",
    "notice_version",
    "notice_locale",
    "notice_sha256",
    "jurisdiction",
    "method",
    "created_at",
    "commitment",
)


def canonical(data: Mapping[str, Any]) -> bytes:
    """Deterministic JSON: sorted keys, no whitespace, UTF-8 (RFC 8785-compatible for our types)."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(
        "utf-8"
    )


def record_hash(prev_hash: str, row: Mapping[str, Any]) -> str:
    payload: dict[str, Any] = {"v": PAYLOAD_VERSION}
    for name in HASHED_FIELDS:
        payload[name] = row[name]
    return hashlib.sha256(prev_hash.encode("ascii") + b"\n" + canonical(payload)).hexdigest()


def commitment(
    key: bytes, record_id: str, subject_id: str, ip_hash: str | None, ua_hash: str | None
) -> str:
    body = {"record_id": record_id, "subject_id": subject_id, "ip": ip_hash, "ua": ua_hash}
    return hmac.new(key, canonical(body), hashlib.sha256).hexdigest()


def erasure_commitment(record_ids: Sequence[str]) -> str:
    """What an erasure entry's hash commits to: exactly these records, in this order."""
    body = {"count": len(record_ids), "record_ids": list(record_ids)}
    return hashlib.sha256(canonical(body)).hexdigest()


def erased_ids_column(record_ids: Sequence[str]) -> str:
    return json.dumps(list(record_ids), separators=(",", ":"))


def _parse_ids(value: Any) -> list[str] | None:
    if not isinstance(value, str):
        return None
    try:
        ids = json.loads(value)
    except ValueError:
        return None
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        return None
    return ids


class ChainVerifier:
    """Feed rows in ``seq`` order (with the subject's key as ``subject_key``, hex or None).

    ``legacy_before``: records with a smaller ``seq`` were written before erasure entries existed
    (schema v2); those erased but named by no entry are counted in ``legacy`` instead of failing.
    Memory: the ids of erased records not (yet) named by an erasure entry, which in an intact
    ledger are those of erasures whose entry is still ahead plus the legacy ones.
    """

    def __init__(self, legacy_before: int = 1) -> None:
        self.count = 0
        self.prev = GENESIS
        self.expected_seq = 1
        self.broken: tuple[int, str, str] | None = None
        self.legacy_before = legacy_before
        self.legacy = 0
        self.pending: dict[str, int] = {}  # erased record id -> seq, until an entry names it

    def _fail(self, row: Mapping[str, Any], reason: str) -> bool:
        self.broken = (int(row["seq"]), str(row["record_id"]), reason)
        return False

    def feed(self, row: Mapping[str, Any]) -> bool:
        """Check one row; False (and ``broken`` set) at the first problem."""
        seq = int(row["seq"])
        if seq != self.expected_seq:
            what = "missing (deleted)" if seq > self.expected_seq else "out of order"
            return self._fail(row, f"expected seq {self.expected_seq}, found {seq}: records {what}")
        if row["prev_hash"] != self.prev:
            return self._fail(
                row, "prev_hash does not match the previous record (deleted, inserted or reordered)"
            )
        if record_hash(self.prev, row) != row["hash"]:
            return self._fail(row, "hash does not match the record's content (edited)")
        if row["action"] == ERASED:
            if not self._erasure(row):
                return False
        elif row.get("erased_ids") is not None:
            return self._fail(row, "erased_ids set on a record that is not an erasure (edited)")
        elif not self._personal_ok(row):
            return self._fail(row, "personal fields do not match their commitment (edited)")
        elif row["subject_id"] is None:
            self.pending[str(row["record_id"])] = seq
        self.prev = str(row["hash"])
        self.expected_seq += 1
        self.count += 1
        return True

    def _erasure(self, row: Mapping[str, Any]) -> bool:
        if (
            row["subject_id"] is not None
            or row["ip_hash"] is not None
            or row["ua_hash"] is not None
        ):
            return self._fail(row, "erasure entry carries personal fields (edited)")
        ids = _parse_ids(row.get("erased_ids"))
        if ids is None or not hmac.compare_digest(erasure_commitment(ids), str(row["commitment"])):
            return self._fail(row, "erasure entry's record list does not match its commitment")
        if int(row["seq"]) < self.legacy_before:
            return self._fail(
                row, "erasure entry before the v2 erasure boundary (consent_settings edited)"
            )
        for record_id in ids:
            # an id not pending was read before its erasure committed (verify runs alongside
            # writers) or was already covered: coverage is all that matters
            self.pending.pop(record_id, None)
        return True

    @staticmethod
    def _personal_ok(row: Mapping[str, Any]) -> bool:
        subject = row["subject_id"]
        if subject is None:  # erased: nothing personal may remain
            return row["ip_hash"] is None and row["ua_hash"] is None
        key = row.get("subject_key")
        if not key:
            return False
        expected = commitment(
            bytes.fromhex(str(key)), row["record_id"], subject, row["ip_hash"], row["ua_hash"]
        )
        return hmac.compare_digest(expected, str(row["commitment"]))

    def finish(self, head_seq: int, head_hash: str) -> VerifyReport:
        self.legacy = sum(1 for seq in self.pending.values() if seq < self.legacy_before)
        if self.broken is not None:
            seq, record_id, reason = self.broken
            return VerifyReport(False, self.count, head_hash, seq, record_id, reason, self.legacy)
        if self.count != head_seq or self.prev != head_hash:
            return VerifyReport(
                False,
                self.count,
                head_hash,
                self.count + 1,
                None,
                f"the chain head says {head_seq} records ending in {head_hash[:12]}…, the table "
                f"holds {self.count} ending in {self.prev[:12]}… (records deleted at the end)",
                self.legacy,
            )
        for record_id, seq in self.pending.items():  # dicts keep seq order: the first one
            if seq < self.legacy_before:
                continue
            return VerifyReport(
                False,
                self.count,
                head_hash,
                seq,
                record_id,
                "personal fields removed but no later erasure entry names this record "
                "(fake erasure)",
                self.legacy,
            )
        return VerifyReport(True, self.count, head_hash, legacy_erasures=self.legacy)
