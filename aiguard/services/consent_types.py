"""Values and errors of the consent ledger (no I/O)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

from aiguard.errors import AIGuardError

Action = Literal["granted", "refused", "withdrawn"]
ACTIONS: tuple[Action, ...] = ("granted", "refused", "withdrawn")
# what a ledger row may hold: the subjects' actions, plus the ledger's own erasure entries
EntryAction = Literal["granted", "refused", "withdrawn", "erased"]
ExportFormat = Literal["csv", "jsonl", "receipt"]


class UnknownPurposeError(AIGuardError, ValueError):
    """A purpose that ``policy.consent.purposes`` does not list."""

    code = "unknown_purpose"

    def __init__(self, purposes: list[str]) -> None:
        self.purposes = purposes
        super().__init__(f"unknown consent purpose(s): {', '.join(purposes)}")


class InvalidConsentError(AIGuardError, ValueError):
    """A consent request that cannot be recorded (empty purposes, bad action or method)."""

    code = "invalid_consent"


class NoticeOutdatedError(AIGuardError, ValueError):
    """The subject saw another notice version than the current one: show the notice again."""

    code = "notice_outdated"

    def __init__(self, seen: str, current: str) -> None:
        self.seen = seen
        self.current = current
        super().__init__(f"notice version {seen!r} is not the current version {current!r}")


@dataclass(frozen=True, slots=True)
class ConsentRecord:
    """One ledger row: one action on one purpose by one subject, hash-chained to the previous.

    An erasure entry (``action == "erased"``, ``purpose == "*"``) has no subject and names the
    records it erased in ``erased_ids`` (JSON list), committed to by its ``commitment``.
    """

    seq: int
    record_id: str
    receipt_id: str  # shared by the rows one ``record()`` call wrote
    subject_id: str | None  # None once the subject was erased
    purpose: str
    action: EntryAction
    notice_id: str
    notice_version: str
    notice_locale: str
    notice_sha256: str
    jurisdiction: str
    method: str
    created_at: str  # UTC, ISO 8601 with microseconds and "Z"
    ip_hash: str | None
    ua_hash: str | None
    commitment: str
    prev_hash: str
    hash: str
    erased_at: str | None = None
    erased_ids: str | None = None  # erasure entries only: JSON list of the erased record ids

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class ConsentDecision:
    """The gate's answer: ``missing`` are the required purposes not currently granted."""

    allowed: bool
    missing: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """Result of walking the whole chain. ``broken_*`` name the first record that fails.

    ``legacy_erasures`` counts records erased before erasure entries existed (schema v2): they
    cannot be proven genuine and are reported, not failed (see docs/consent.md).
    """

    ok: bool
    records: int
    head_hash: str
    broken_seq: int | None = None
    broken_record_id: str | None = None
    reason: str = ""
    legacy_erasures: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
