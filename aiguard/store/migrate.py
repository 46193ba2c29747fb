"""Schema migrations shared by both backends.

Applied migrations are kept in ``aiguard_migrations(component, version, name, applied_at)``. Each
pending migration runs in its own transaction together with its bookkeeping row, under a lock that
serialises every process starting at the same moment (SQLite: ``BEGIN IMMEDIATE``; PostgreSQL: a
transaction-scoped advisory lock). The "already applied?" check is repeated under that lock, so the
loser of a start-up race sees the winner's row and skips the step instead of failing on it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime
from typing import Any, Protocol

from aiguard.errors import ConfigError
from aiguard.store.base import Dialect, Migration

TABLE_SQL = (
    "CREATE TABLE IF NOT EXISTS aiguard_migrations ("
    " component TEXT NOT NULL,"
    " version INTEGER NOT NULL,"
    " name TEXT NOT NULL,"
    " applied_at TEXT NOT NULL,"
    " PRIMARY KEY (component, version))"
)


class ScriptTx(Protocol):
    """The part of a backend transaction migrations need (``script`` runs several statements)."""

    async def execute(self, sql: str, *args: Any) -> int: ...

    async def fetchall(self, sql: str, *args: Any) -> list[dict[str, Any]]: ...

    async def script(self, sql: str) -> None: ...


TxFactory = Callable[[], AbstractAsyncContextManager[ScriptTx]]
LockFn = Callable[[ScriptTx], Awaitable[None]]


def ordered(migrations: Sequence[Migration]) -> list[Migration]:
    """Migrations sorted by (component, version); duplicate versions are a programming error."""
    seen: dict[tuple[str, int], str] = {}
    for m in migrations:
        key = (m.component, m.version)
        if key in seen and seen[key] != m.name:
            raise ConfigError(f"migration {m.component} v{m.version} is defined twice")
        seen[key] = m.name
    unique = {(m.component, m.version): m for m in migrations}
    return [unique[k] for k in sorted(unique)]


async def apply(
    begin: TxFactory, lock: LockFn, dialect: Dialect, migrations: Sequence[Migration]
) -> list[Migration]:
    """Apply what is pending; return the migrations this call applied (in order)."""
    todo = ordered(migrations)
    if not todo:
        return []
    async with begin() as tx:
        await lock(tx)
        await tx.script(TABLE_SQL)
        rows = await tx.fetchall("SELECT component, version FROM aiguard_migrations")
    done = {(str(r["component"]), int(r["version"])) for r in rows}
    applied: list[Migration] = []
    for m in todo:
        if (m.component, m.version) in done:
            continue
        async with begin() as tx:
            await lock(tx)
            again = await tx.fetchall(
                "SELECT 1 AS x FROM aiguard_migrations WHERE component = ? AND version = ?",
                m.component,
                m.version,
            )
            if again:  # another process applied it while we waited for the lock
                continue
            await tx.script(m.sqlite if dialect == "sqlite" else m.postgres)
            await tx.execute(
                "INSERT INTO aiguard_migrations (component, version, name, applied_at)"
                " VALUES (?, ?, ?, ?)",
                m.component,
                m.version,
                m.name,
                datetime.now(UTC).isoformat(timespec="microseconds"),
            )
        applied.append(m)
    return applied
