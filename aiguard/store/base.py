"""The storage layer: one small async SQL protocol, two real backends (SQLite, PostgreSQL).

Services (consent ledger, message records, reports) own their SQL and their tables; the store owns
connections, transactions, dialect differences and migrations. SQL is written with ``?``
placeholders; the PostgreSQL backend rewrites them to ``$1..$n``. Keep SQL to the portable subset
(``INTEGER``/``BIGINT``, ``TEXT``, ``REAL``, ``BLOB``/``BYTEA`` differences go through
``Migration.sqlite`` vs ``Migration.postgres``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

Row = dict[str, Any]
Dialect = Literal["sqlite", "postgres"]


@dataclass(frozen=True, slots=True)
class Migration:
    """One schema step of one component; applied once, in ``version`` order, at startup."""

    component: str  # e.g. "consent", "records", "reports"
    version: int
    name: str
    sqlite: str  # one or more statements separated by ";"
    postgres: str


@runtime_checkable
class Tx(Protocol):
    """A transaction (or a connection in autocommit mode outside ``transaction()``)."""

    async def execute(self, sql: str, *args: Any) -> int:
        """Run one statement; return the number of affected rows."""
        ...

    async def fetchone(self, sql: str, *args: Any) -> Row | None: ...

    async def fetchall(self, sql: str, *args: Any) -> list[Row]: ...


@runtime_checkable
class Database(Protocol):
    """A connection pool to one database. Create with ``aiguard.store.open_database(url)``."""

    dialect: Dialect
    url: str

    async def connect(self) -> None:
        """Open connections and apply pending migrations registered so far."""
        ...

    async def close(self) -> None: ...

    def transaction(self, *, exclusive: bool = False) -> AbstractAsyncContextManager[Tx]:
        """A read-write transaction; commits on exit, rolls back on error.

        ``exclusive=True`` serialises writers across processes (SQLite: ``BEGIN IMMEDIATE``;
        PostgreSQL: callers take their own row or advisory locks inside).
        """
        ...

    async def fetchone(self, sql: str, *args: Any) -> Row | None: ...

    async def fetchall(self, sql: str, *args: Any) -> list[Row]: ...

    def iterate(self, sql: str, *args: Any, batch: int = 1000) -> AsyncIterator[Row]:
        """Stream rows in constant memory (server-side cursor / batched fetch)."""
        ...

    async def migrate(self, migrations: Sequence[Migration]) -> list[Migration]:
        """Apply the given migrations that are not applied yet; return those applied."""
        ...
