"""PostgreSQL backend on asyncpg (extra ``aiguard[postgres]``).

* SQL is written with ``?`` placeholders; each distinct SQL string is rewritten to ``$1..$n`` once
  and cached (literals, quoted identifiers and comments are left alone; dollar-quoted bodies and
  the jsonb ``?`` operators are not supported in parametrised SQL).
* ``transaction(exclusive=...)`` is a plain READ COMMITTED transaction: callers that need
  cross-replica serialisation take a row lock (``SELECT ... FOR UPDATE``) or
  ``pg_advisory_xact_lock`` inside it, which is what the consent ledger and migrations do.
* ``iterate`` runs a server-side cursor inside a read-only transaction on a dedicated connection
  (a long export never holds a pool slot), fetching ``batch`` rows at a time, so memory stays
  constant whatever the table size. Close an abandoned iterator with ``contextlib.aclosing``.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import anyio

from aiguard.errors import MissingExtraError, StoreError
from aiguard.store import migrate as _migrate
from aiguard.store.base import Dialect, Migration, Row
from aiguard.store.errors import IntegrityError

if TYPE_CHECKING:
    import asyncpg
    import asyncpg.pool

# one key for "someone is migrating this database"; any constant works, this spells "aiguard"
MIGRATION_LOCK_KEY = 0x61696775617264
_COUNT = re.compile(r"(\d+)\s*$")


@lru_cache(maxsize=4096)
def to_dollar(sql: str) -> str:
    """Rewrite ``?`` placeholders to ``$1..$n``, skipping literals, identifiers and comments."""
    if "?" not in sql:
        return sql
    out: list[str] = []
    n = 0
    i = 0
    end = len(sql)
    while i < end:
        c = sql[i]
        if c in "'\"":  # a doubled quote inside closes and reopens: the scan stays correct
            j = sql.find(c, i + 1)
            j = end if j < 0 else j + 1
            out.append(sql[i:j])
            i = j
        elif c == "-" and sql.startswith("--", i):
            j = sql.find("\n", i)
            j = end if j < 0 else j
            out.append(sql[i:j])
            i = j
        elif c == "/" and sql.startswith("/*", i):
            j = sql.find("*/", i + 2)
            j = end if j < 0 else j + 2
            out.append(sql[i:j])
            i = j
        elif c == "?":
            n += 1
            out.append(f"${n}")
            i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _rowcount(status: str) -> int:
    """asyncpg returns the command tag (``INSERT 0 3``, ``UPDATE 2``); the last number counts."""
    m = _COUNT.search(status or "")
    return int(m.group(1)) if m else 0


@contextmanager
def _translated() -> Iterator[None]:
    import asyncpg

    try:
        yield
    except asyncpg.IntegrityConstraintViolationError as exc:
        raise IntegrityError(str(exc)) from exc
    except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
        raise StoreError(f"postgres: {exc}") from exc


class PostgresTx:
    def __init__(
        self, conn: asyncpg.Connection[Any] | asyncpg.pool.PoolConnectionProxy[Any]
    ) -> None:
        self._conn = conn

    async def execute(self, sql: str, *args: Any) -> int:
        with _translated():
            return _rowcount(await self._conn.execute(to_dollar(sql), *args))

    async def fetchone(self, sql: str, *args: Any) -> Row | None:
        with _translated():
            rec = await self._conn.fetchrow(to_dollar(sql), *args)
        return None if rec is None else dict(rec)

    async def fetchall(self, sql: str, *args: Any) -> list[Row]:
        with _translated():
            return [dict(r) for r in await self._conn.fetch(to_dollar(sql), *args)]

    async def script(self, sql: str) -> None:
        # no arguments: asyncpg uses the simple query protocol, which accepts several statements
        with _translated():
            await self._conn.execute(sql)


class PostgresDatabase:
    dialect: Dialect = "postgres"

    def __init__(self, url: str, *, pool_size: int = 4) -> None:
        try:
            import asyncpg  # noqa: F401
        except ImportError:
            raise MissingExtraError("asyncpg", "postgres") from None
        self.url = url
        self.pool_size = pool_size
        self._pool: asyncpg.pool.Pool[Any] | None = None
        self._opening = anyio.Lock()

    async def _ready(self) -> asyncpg.pool.Pool[Any]:
        if self._pool is None:
            async with self._opening:
                if self._pool is None:
                    import asyncpg

                    with _translated():
                        self._pool = await asyncpg.create_pool(
                            self.url, min_size=1, max_size=self.pool_size
                        )
        return self._pool

    async def connect(self) -> None:
        await self._ready()

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    @asynccontextmanager
    async def transaction(self, *, exclusive: bool = False) -> AsyncIterator[PostgresTx]:
        pool = await self._ready()
        async with pool.acquire() as conn:
            tr = conn.transaction()
            with _translated():
                await tr.start()
            try:
                yield PostgresTx(conn)
            except BaseException:
                with anyio.CancelScope(shield=True), _translated():
                    await tr.rollback()
                raise
            with anyio.CancelScope(shield=True), _translated():
                await tr.commit()

    async def fetchone(self, sql: str, *args: Any) -> Row | None:
        pool = await self._ready()
        with _translated():
            rec = await pool.fetchrow(to_dollar(sql), *args)
        return None if rec is None else dict(rec)

    async def fetchall(self, sql: str, *args: Any) -> list[Row]:
        pool = await self._ready()
        with _translated():
            return [dict(r) for r in await pool.fetch(to_dollar(sql), *args)]

    async def iterate(self, sql: str, *args: Any, batch: int = 1000) -> AsyncIterator[Row]:
        import asyncpg

        query = to_dollar(sql)
        # a dedicated connection: a long export must not hold a pool slot the gate needs
        with _translated():
            conn = await asyncpg.connect(self.url)
        try:
            async with conn.transaction(readonly=True):
                with _translated():
                    async for rec in conn.cursor(query, *args, prefetch=batch):
                        yield dict(rec)
        finally:
            with anyio.CancelScope(shield=True):
                await conn.close()

    async def migrate(self, migrations: Sequence[Migration]) -> list[Migration]:
        async def lock(tx: _migrate.ScriptTx) -> None:
            await tx.execute("SELECT pg_advisory_xact_lock(?)", MIGRATION_LOCK_KEY)

        return await _migrate.apply(self.transaction, lock, self.dialect, migrations)
