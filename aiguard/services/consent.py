"""The consent ledger: record, gate, verify, export and erase (see docs/consent.md).

* ``record`` appends one row per purpose to a hash chain. Writers serialise on the chain head:
  SQLite ``BEGIN IMMEDIATE`` (one writer per file across processes), PostgreSQL
  ``SELECT ... FOR UPDATE`` on the single head row (one writer across replicas). The call returns
  only after the commit, so an acknowledged record is durable.
* ``check`` is the gate: a purpose counts only if its latest action is ``granted`` and was given
  for the current notice version. Decisions are cached for ``cache_ttl_seconds`` and dropped
  at once when this process records or erases anything for the subject.
* ``verify`` walks the chain in ``seq`` order in constant memory and names the first bad record.
* Personal fields live outside the hashed payload, bound by a per-subject keyed commitment;
  ``subject_erase`` deletes the key and the fields and appends an erasure entry naming the
  records it erased, so ``verify`` can tell a real erasure from personal fields nulled by hand.
"""

from __future__ import annotations

import re
import secrets
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from contextlib import aclosing
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any, cast

from aiguard.policy.models import Policy
from aiguard.policy.prompts import Catalogue, Text
from aiguard.services import consent_chain as chain
from aiguard.services import consent_evidence as evidence
from aiguard.services.consent_export import (
    RECORD_FIELDS,
    CsvFormatter,
    ReceiptBuilder,
    jsonl_line,
)
from aiguard.services.consent_types import (
    ACTIONS,
    Action,
    ConsentDecision,
    ConsentRecord,
    ExportFormat,
    InvalidConsentError,
    NoticeOutdatedError,
    UnknownPurposeError,
    VerifyReport,
)
from aiguard.store.base import Database, Migration, Row, Tx

if TYPE_CHECKING:  # a type only: services never import the asgi layer at run time
    from aiguard.asgi.identity import RequestIdentity

__all__ = [
    "MIGRATIONS",
    "ConsentDecision",
    "ConsentRecord",
    "ConsentService",
    "InvalidConsentError",
    "NoticeOutdatedError",
    "UnknownPurposeError",
    "VerifyReport",
]

_TABLES = """
CREATE TABLE consent_records (
  seq {seq} PRIMARY KEY,
  record_id TEXT NOT NULL UNIQUE,
  receipt_id TEXT NOT NULL,
  subject_id TEXT,
  purpose TEXT NOT NULL,
  action TEXT NOT NULL CHECK (action IN ('granted', 'refused', 'withdrawn')),
  notice_id TEXT NOT NULL,
  notice_version TEXT NOT NULL,
  notice_locale TEXT NOT NULL,
  notice_sha256 TEXT NOT NULL,
  jurisdiction TEXT NOT NULL,
  method TEXT NOT NULL,
  created_at TEXT NOT NULL,
  ip_hash TEXT,
  ua_hash TEXT,
  commitment TEXT NOT NULL,
  prev_hash TEXT NOT NULL,
  hash TEXT NOT NULL,
  erased_at TEXT
);
CREATE INDEX consent_records_subject ON consent_records (subject_id, seq);
CREATE INDEX consent_records_created ON consent_records (created_at);
CREATE TABLE consent_subject_keys (
  subject_id TEXT PRIMARY KEY,
  key TEXT NOT NULL,
  created_at TEXT NOT NULL
);
CREATE TABLE consent_chain_head (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  seq {seq} NOT NULL,
  hash TEXT NOT NULL
);
INSERT INTO consent_chain_head (id, seq, hash) VALUES (1, 0, '{genesis}');
CREATE TABLE consent_settings (name TEXT PRIMARY KEY, value TEXT NOT NULL)
"""

# v2: erasure entries in the chain. The action CHECK gains 'erased' (SQLite cannot alter a
# CHECK: the table is rebuilt), ``erased_ids`` holds an entry's record list, and the setting
# marks where erasure entries begin: records before it may have been erased without an entry.
_ERASURE_BOUNDARY = "erasure_entries_from_seq"
_BOUNDARY_SQL = (
    "INSERT INTO consent_settings (name, value) SELECT 'erasure_entries_from_seq',"
    " CAST(seq + 1 AS TEXT) FROM consent_chain_head WHERE id = 1"
)
_V1_COLUMNS = ", ".join(f for f in RECORD_FIELDS if f != "erased_ids")
_V2_SQLITE = f"""
CREATE TABLE consent_records_v2 (
  seq INTEGER PRIMARY KEY,
  record_id TEXT NOT NULL UNIQUE,
  receipt_id TEXT NOT NULL,
  subject_id TEXT,
  purpose TEXT NOT NULL,
  action TEXT NOT NULL CHECK (action IN ('granted', 'refused', 'withdrawn', 'erased')),
  notice_id TEXT NOT NULL,
  notice_version TEXT NOT NULL,
  notice_locale TEXT NOT NULL,
  notice_sha256 TEXT NOT NULL,
  jurisdiction TEXT NOT NULL,
  method TEXT NOT NULL,
  created_at TEXT NOT NULL,
  ip_hash TEXT,
  ua_hash TEXT,
  commitment TEXT NOT NULL,
  prev_hash TEXT NOT NULL,
  hash TEXT NOT NULL,
  erased_at TEXT,
  erased_ids TEXT
);
INSERT INTO consent_records_v2 ({_V1_COLUMNS}) SELECT {_V1_COLUMNS} FROM consent_records;
DROP TABLE consent_records;
ALTER TABLE consent_records_v2 RENAME TO consent_records;
CREATE INDEX consent_records_subject ON consent_records (subject_id, seq);
CREATE INDEX consent_records_created ON consent_records (created_at);
{_BOUNDARY_SQL}
"""  # noqa: S608  (built from constants only)
_V2_POSTGRES = f"""
ALTER TABLE consent_records DROP CONSTRAINT consent_records_action_check;
ALTER TABLE consent_records ADD CONSTRAINT consent_records_action_check
  CHECK (action IN ('granted', 'refused', 'withdrawn', 'erased'));
ALTER TABLE consent_records ADD COLUMN erased_ids TEXT;
{_BOUNDARY_SQL}
"""

MIGRATIONS = [
    Migration(
        "consent",
        1,
        "consent ledger",
        sqlite=_TABLES.format(seq="INTEGER", genesis=chain.GENESIS),
        postgres=_TABLES.format(seq="BIGINT", genesis=chain.GENESIS),
    ),
    Migration("consent", 2, "erasure entries", sqlite=_V2_SQLITE, postgres=_V2_POSTGRES),
]

# SQL built from the constant column list only (never from input): hence the S608 waivers
_COLUMNS = ", ".join(RECORD_FIELDS)
_PLACEHOLDERS = ", ".join("?" for _ in RECORD_FIELDS)
_SELECT = f"SELECT {_COLUMNS} FROM consent_records"  # noqa: S608
_VERIFY = (
    f"SELECT {', '.join('r.' + f for f in RECORD_FIELDS)}, k.key AS subject_key"  # noqa: S608
    " FROM consent_records r"
    " LEFT JOIN consent_subject_keys k ON k.subject_id = r.subject_id"
    " WHERE r.seq > ? AND r.seq <= ? ORDER BY r.seq"
)
_METHOD = re.compile(r"^[a-z0-9][a-z0-9_.:-]{0,31}$")
_SALT_SETTING = "evidence_salt"


def utc_now() -> str:
    """Fixed-width UTC timestamps sort as strings on both backends."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def to_timestamp(value: datetime | date | str) -> str:
    """Normalise a ``since``/``until`` bound to the ledger's timestamp format (naive = UTC)."""
    try:
        if isinstance(value, str):
            value = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        if not isinstance(value, datetime):
            value = datetime(value.year, value.month, value.day)
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    except OverflowError as exc:  # e.g. year 1 with a positive offset
        raise ValueError(f"timestamp out of range: {value}") from exc


@lru_cache(maxsize=64)
def _insert_sql(rows: int) -> str:
    """One INSERT for all rows of a ``record()`` call: one round trip inside the chain lock."""
    values = ", ".join(f"({_PLACEHOLDERS})" for _ in range(rows))
    return f"INSERT INTO consent_records ({_COLUMNS}) VALUES {values}"  # noqa: S608


def _record(row: Row) -> ConsentRecord:
    return ConsentRecord(**{f: row[f] for f in RECORD_FIELDS})


class ConsentService:
    """One ledger per database. Build once per app; safe for concurrent use."""

    def __init__(
        self, db: Database, policy: Policy, catalogue: Catalogue, *, salt: bytes | None = None
    ) -> None:
        cfg = policy.consent
        self.db = db
        self.policy = policy
        self.catalogue = catalogue
        self._notice = cfg.notice
        self._purposes = frozenset(cfg.purposes)
        self._required = tuple(cfg.required)
        self._ttl = cfg.cache_ttl_seconds
        self._cache_max = cfg.cache_max_subjects
        self._cache: dict[str, tuple[float, ConsentDecision]] = {}
        self._generation = 0  # bumped by every write, so an in-flight check cannot cache stale
        # the evidence key: derived from the given secret, else from the policy (see docs)
        self._salt = (
            evidence.derive_salt(salt) if salt is not None else evidence.configured_salt(policy)
        )
        self._head_sql = "SELECT seq, hash FROM consent_chain_head WHERE id = 1"
        self._key_sql = "SELECT key FROM consent_subject_keys WHERE subject_id = ?"
        if db.dialect == "postgres":
            self._head_sql += " FOR UPDATE"  # the one lock every replica's writer queues on
            self._key_sql += " FOR SHARE"  # see _subject_key
        catalogue.text(self._notice, catalogue.default_locale)  # fail at startup, not per request

    # ---------------------------------------------------------------- notice ---------------
    def notice(self, locale: str | None) -> Text:
        return self.catalogue.text(self._notice, locale or self.catalogue.default_locale)

    def _current_version(self, locale: str) -> str:
        return self.catalogue.text(self._notice, locale).version

    def challenge(self, missing: Sequence[str], locale: str | None) -> dict[str, Any]:
        """Extra fields of the 428 ``consent_required`` problem."""
        text = self.notice(locale)
        return {
            "purposes": list(missing),
            "notice": {**text.ref(), "text": text.text},
            "consent_url": f"{self.policy.prefix}/consent",
        }

    # ---------------------------------------------------------------- write ----------------
    def validate(
        self, purposes: Sequence[str], action: str, method: str = "api"
    ) -> tuple[list[str], Action]:
        """Check a request without touching the database (the API calls it before reading)."""
        if action not in ACTIONS:
            raise InvalidConsentError(f"action must be one of {', '.join(ACTIONS)}")
        if not _METHOD.match(method):
            raise InvalidConsentError("method: 1-32 characters of a-z 0-9 _ . : -")
        unique = list(dict.fromkeys(purposes))
        if not unique:
            raise InvalidConsentError("purposes must not be empty")
        unknown = [p for p in unique if p not in self._purposes]
        if unknown:
            raise UnknownPurposeError(unknown)
        return unique, action

    async def record(
        self,
        identity: RequestIdentity,
        purposes: list[str],
        action: Action,
        method: str = "api",
        locale: str | None = None,
        *,
        notice_version: str | None = None,
    ) -> list[ConsentRecord]:
        """Append one record per purpose; returns them once committed.

        ``notice_version`` (optional) is the version the subject was shown; a mismatch raises
        ``NoticeOutdatedError`` so nobody consents to a text they did not see.
        """
        wanted, act = self.validate(purposes, action, method)
        notice = self.notice(locale or identity.locale)
        if notice_version is not None and notice_version != notice.version:
            raise NoticeOutdatedError(notice_version, notice.version)
        salt = await self._evidence_salt()
        ip_hash = evidence.ip_evidence(salt, identity.client_ip)
        ua_hash = evidence.ua_evidence(salt, identity.user_agent)
        subject = identity.subject_id
        receipt_id = "rcpt_" + uuid.uuid4().hex
        rows: list[dict[str, Any]] = []
        async with self.db.transaction(exclusive=True) as tx:
            # the key first, the chain head second: the head lock is then held only for the
            # INSERT and the head UPDATE, which is what bounds throughput across replicas
            key = await self._subject_key(tx, subject)
            head = await tx.fetchone(self._head_sql)
            if head is None:
                raise InvalidConsentError("consent tables are missing: run `aiguard db upgrade`")
            seq, prev = int(head["seq"]), str(head["hash"])
            created_at = utc_now()  # taken under the lock: chain order is time order
            for purpose in wanted:
                seq += 1
                record_id = "cons_" + uuid.uuid4().hex
                row: dict[str, Any] = {
                    "seq": seq,
                    "record_id": record_id,
                    "receipt_id": receipt_id,
                    "subject_id": subject,
                    "purpose": purpose,
                    "action": act,
                    "notice_id": notice.id,
                    "notice_version": notice.version,
                    "notice_locale": notice.locale,
                    "notice_sha256": notice.sha256,
                    "jurisdiction": self.policy.consent.jurisdiction,
                    "method": method,
                    "created_at": created_at,
                    "ip_hash": ip_hash,
                    "ua_hash": ua_hash,
                    "commitment": chain.commitment(key, record_id, subject, ip_hash, ua_hash),
                    "prev_hash": prev,
                    "erased_at": None,
                    "erased_ids": None,
                }
                row["hash"] = prev = chain.record_hash(prev, row)
                rows.append(row)
            await tx.execute(
                _insert_sql(len(rows)), *(row[f] for row in rows for f in RECORD_FIELDS)
            )
            await tx.execute(
                "UPDATE consent_chain_head SET seq = ?, hash = ? WHERE id = 1", seq, prev
            )
        out = [_record(row) for row in rows]
        self._forget(subject)
        return out

    async def _subject_key(self, tx: Tx, subject_id: str) -> bytes:
        """The subject's commitment key, created on first use.

        On PostgreSQL the key row is share-locked until commit, so a concurrent
        ``subject_erase`` (which deletes the key first) waits for this record and then erases
        it too, instead of leaving a record whose key is gone.
        """
        row = await tx.fetchone(self._key_sql, subject_id)
        if row is None:
            await tx.execute(
                "INSERT INTO consent_subject_keys (subject_id, key, created_at) VALUES (?, ?, ?)"
                " ON CONFLICT (subject_id) DO NOTHING",
                subject_id,
                secrets.token_hex(32),
                utc_now(),
            )
            row = await tx.fetchone(self._key_sql, subject_id)
        assert row is not None  # inserted above in this transaction, or by a committed one
        return bytes.fromhex(str(row["key"]))

    async def _evidence_salt(self) -> bytes:
        if self._salt is None:
            # no secret configured: one random salt per database, shared by every replica
            async with self.db.transaction() as tx:
                await tx.execute(
                    "INSERT INTO consent_settings (name, value) VALUES (?, ?)"
                    " ON CONFLICT (name) DO NOTHING",
                    _SALT_SETTING,
                    secrets.token_hex(32),
                )
                row = await tx.fetchone(
                    "SELECT value FROM consent_settings WHERE name = ?", _SALT_SETTING
                )
            assert row is not None
            self._salt = bytes.fromhex(str(row["value"]))
        return self._salt

    def _forget(self, subject_id: str) -> None:
        self._generation += 1
        self._cache.pop(subject_id, None)

    # ---------------------------------------------------------------- gate -----------------
    async def check(self, subject_id: str) -> ConsentDecision:
        """The gate: may this subject chat now? Cached; never stale for this process's writes."""
        if not self._required:
            return _ALLOWED
        hit = self._cache.get(subject_id)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        generation = self._generation
        latest = await self._latest(subject_id)
        missing = tuple(p for p in self._required if not self._granted(latest.get(p)))
        decision = ConsentDecision(not missing, missing) if missing else _ALLOWED
        if self._ttl > 0 and generation == self._generation:
            if len(self._cache) >= self._cache_max:
                # dicts keep insertion order: drop the oldest tenth in one go
                for old in list(self._cache)[: max(1, self._cache_max // 10)]:
                    del self._cache[old]
            self._cache[subject_id] = (time.monotonic() + self._ttl, decision)
        return decision

    def _granted(self, row: Row | None) -> bool:
        return (
            row is not None
            and row["action"] == "granted"
            and row["notice_version"] == self._current_version(str(row["notice_locale"]))
        )

    async def _latest(self, subject_id: str) -> dict[str, Row]:
        rows = await self.db.fetchall(
            "SELECT purpose, action, notice_version, notice_locale, created_at"
            " FROM consent_records WHERE subject_id = ? ORDER BY seq DESC",
            subject_id,
        )
        latest: dict[str, Row] = {}
        for row in rows:
            latest.setdefault(str(row["purpose"]), row)
        return latest

    async def status(self, subject_id: str, locale: str | None) -> dict[str, Any]:
        """``GET /consent``: every purpose's state for the subject, plus the notice to show."""
        latest = await self._latest(subject_id)
        purposes: dict[str, Any] = {}
        for p in self.policy.consent.purposes:
            row = latest.get(p)
            if row is None:
                purposes[p] = {"status": "none", "notice_version": None, "updated_at": None}
                continue
            state = str(row["action"])
            if state == "granted" and not self._granted(row):
                state = "outdated"  # granted for an older notice: ask again
            purposes[p] = {
                "status": state,
                "notice_version": row["notice_version"],
                "updated_at": row["created_at"],
            }
        text = self.notice(locale)
        return {
            "subject": subject_id,
            "required": list(self._required),
            "purposes": purposes,
            "notice": {**text.ref(), "text": text.text},
        }

    # ---------------------------------------------------------------- verify ---------------
    async def verify(self) -> VerifyReport:
        """Walk the whole chain (constant memory); the report names the first broken record."""
        head = await self.db.fetchone("SELECT seq, hash FROM consent_chain_head WHERE id = 1")
        if head is None:
            return VerifyReport(False, 0, "", None, None, "the chain head row is missing")
        head_seq, head_hash = int(head["seq"]), str(head["hash"])
        verifier = chain.ChainVerifier(await self._erasure_boundary())
        done = 0
        for _ in range(5):  # writers may commit while we walk: follow the head a few times
            rows = self.db.iterate(_VERIFY, done, head_seq, batch=2000)
            async with aclosing(cast(AsyncGenerator[Row, None], rows)) as it:
                async for row in it:
                    if not verifier.feed(row):
                        return verifier.finish(head_seq, head_hash)
            done = head_seq
            # a row past the head is not part of the chain, yet the gate would read it
            stray = await self.db.fetchone(
                "SELECT seq, record_id FROM consent_records WHERE seq > ? ORDER BY seq LIMIT 1",
                head_seq,
            )
            if stray is None:
                break
            head = await self.db.fetchone("SELECT seq, hash FROM consent_chain_head WHERE id = 1")
            assert head is not None
            if int(head["seq"]) <= head_seq:  # the head did not move: the row was inserted
                return VerifyReport(
                    False,
                    verifier.count,
                    head_hash,
                    int(stray["seq"]),
                    str(stray["record_id"]),
                    "record past the chain head: inserted outside the ledger",
                )
            head_seq, head_hash = int(head["seq"]), str(head["hash"])
        return verifier.finish(head_seq, head_hash)

    # ---------------------------------------------------------------- export ---------------
    async def export(
        self,
        fmt: ExportFormat = "jsonl",
        *,
        since: datetime | date | str | None = None,
        until: datetime | date | str | None = None,
        subject_id: str | None = None,
        batch: int = 1000,
    ) -> AsyncIterator[str]:
        """Stream the ledger as text chunks: ``since`` inclusive, ``until`` exclusive."""
        if fmt not in ("csv", "jsonl", "receipt"):
            raise InvalidConsentError("format must be csv, jsonl or receipt")
        where: list[str] = []
        args: list[Any] = []
        if since is not None:
            where.append("created_at >= ?")
            args.append(to_timestamp(since))
        if until is not None:
            where.append("created_at < ?")
            args.append(to_timestamp(until))
        if subject_id is not None:
            where.append("subject_id = ?")
            args.append(subject_id)
        if fmt == "receipt":  # a receipt documents a grant by someone still on record
            where.append("action = 'granted' AND subject_id IS NOT NULL")
        sql = _SELECT
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY seq"
        rows = cast(AsyncGenerator[Row, None], self.db.iterate(sql, *args, batch=batch))
        async with aclosing(rows) as it:
            if fmt == "csv":
                csv_out = CsvFormatter()
                yield csv_out.header()
                async for row in it:
                    yield csv_out.row(row)
            elif fmt == "jsonl":
                async for row in it:
                    yield jsonl_line(row)
            else:
                receipts = ReceiptBuilder(self.policy)
                async for row in it:
                    done = receipts.feed(row)
                    if done is not None:
                        yield done
                last = receipts.flush()
                if last is not None:
                    yield last

    # ---------------------------------------------------------------- data subject rights --
    async def subject_export(self, subject_id: str) -> dict[str, Any]:
        """Everything the ledger holds about one (pseudonymous) subject."""
        rows = await self.db.fetchall(
            _SELECT + " WHERE subject_id = ? ORDER BY seq",
            subject_id,
        )
        return {
            "subject_id": subject_id,
            "consent": {
                "records": [_record(r).as_dict() for r in rows],
                "status": (await self.status(subject_id, None))["purposes"],
            },
        }

    async def subject_erase(self, subject_id: str) -> int:
        """Erase the subject's personal data from the ledger; returns the records affected.

        The records stay (the chain must remain verifiable and the controller must still be
        able to show *that* consent was handled), but nothing links them to the person anymore.
        One erasure entry is appended to the chain, in the same transaction and under the same
        chain lock as ``record()``, naming the erased records (none if there were none).
        """
        async with self.db.transaction(exclusive=True) as tx:
            # key first: on PostgreSQL this waits for in-flight records of the subject (they
            # share-lock the key), and the UPDATE below then sees and erases their rows too
            await tx.execute("DELETE FROM consent_subject_keys WHERE subject_id = ?", subject_id)
            head = await tx.fetchone(self._head_sql)
            if head is None:
                raise InvalidConsentError("consent tables are missing: run `aiguard db upgrade`")
            now = utc_now()
            erased = await tx.fetchall(
                "UPDATE consent_records SET subject_id = NULL, ip_hash = NULL, ua_hash = NULL,"
                " erased_at = ? WHERE subject_id = ? RETURNING record_id",
                now,
                subject_id,
            )
            if erased:
                ids = sorted(str(r["record_id"]) for r in erased)
                row = self._erasure_entry(int(head["seq"]) + 1, str(head["hash"]), ids, now)
                await tx.execute(_insert_sql(1), *(row[f] for f in RECORD_FIELDS))
                await tx.execute(
                    "UPDATE consent_chain_head SET seq = ?, hash = ? WHERE id = 1",
                    row["seq"],
                    row["hash"],
                )
        self._forget(subject_id)
        return len(erased)

    def _erasure_entry(self, seq: int, prev: str, ids: list[str], now: str) -> dict[str, Any]:
        """The chain entry of one erasure: nothing personal, a commitment to the erased ids."""
        record_id = "eras_" + uuid.uuid4().hex
        row: dict[str, Any] = {
            "seq": seq,
            "record_id": record_id,
            "receipt_id": record_id,
            "subject_id": None,
            "purpose": chain.ERASED_PURPOSE,
            "action": chain.ERASED,
            "notice_id": "",
            "notice_version": "",
            "notice_locale": "",
            "notice_sha256": "",
            "jurisdiction": self.policy.consent.jurisdiction,
            "method": "subject_erase",
            "created_at": now,
            "ip_hash": None,
            "ua_hash": None,
            "commitment": chain.erasure_commitment(ids),
            "prev_hash": prev,
            "erased_at": None,
            "erased_ids": chain.erased_ids_column(ids),
        }
        row["hash"] = chain.record_hash(prev, row)
        return row

    async def _erasure_boundary(self) -> int:
        """First seq that must have erasure entries (set by migration v2; missing = all)."""
        row = await self.db.fetchone(
            "SELECT value FROM consent_settings WHERE name = ?", _ERASURE_BOUNDARY
        )
        try:
            return max(1, int(str(row["value"]))) if row is not None else 1
        except ValueError:  # edited to garbage: require entries everywhere (fail safe)
            return 1


_ALLOWED = ConsentDecision(True, ())
