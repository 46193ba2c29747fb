"""SQLite backend: stdlib ``sqlite3`` driven from worker threads, never on the event loop.

* URL: ``sqlite:///relative/path.db`` or ``sqlite:////absolute/path.db``; optional query
  ``?busy_timeout=30&synchronous=full`` (``full`` is the default: an acknowledged write survives
  power loss, not only a process crash).
* A pool of ``pool_size`` connections (opened lazily), each used by one task at a time; every call
  hops to a worker thread through one shared ``CapacityLimiter`` of the same size.
* WAL journal (readers never wait for the writer), ``busy_timeout``, ``foreign_keys=ON``.
* Every ``transaction()`` is ``BEGIN IMMEDIATE``: SQLite has one writer at a time anyway, and a
  deferred transaction that reads and then writes fails with ``SQLITE_BUSY`` (which the busy
  timeout cannot retry) when another process wrote in between. Writers of this process queue on an
  in-process lock first, so only one thread per process waits in SQLite's busy handler;
  writers of other processes are serialised by the file lock. ``exclusive=True`` is therefore the
  same as the default here.
* ``iterate`` uses a dedicated connection, so a long export never holds a pool slot.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qs

import anyio
import anyio.to_thread

from aiguard.errors import ConfigError, StoreError
from aiguard.store import migrate as _migrate
from aiguard.store.base import Dialect, Migration, Row
from aiguard.store.errors import IntegrityError

T = TypeVar("T")
_SYNC = {"full": "FULL", "normal": "NORMAL", "off": "OFF", "extra": "EXTRA"}


def parse_url(url: str) -> tuple[Path, float, str]:
    """``sqlite:///rel.db`` -> (path, busy_timeout seconds, synchronous mode)."""
    if not url.lower().startswith("sqlite:///"):
        raise ConfigError(f"sqlite url must look like sqlite:///path.db, got {url!r}")
    rest, _, query = url[len("sqlite:///") :].partition("?")
    if not rest or rest == ":memory:":
        raise ConfigError("sqlite url needs a file path (an in-memory database cannot be pooled)")
    params = {k: v[-1] for k, v in parse_qs(query, strict_parsing=False).items()}
    unknown = set(params) - {"busy_timeout", "synchronous"}
    if unknown:
        raise ConfigError(f"unknown sqlite url option(s): {', '.join(sorted(unknown))}")
    try:
        busy = float(params.get("busy_timeout", "30"))
    except ValueError:
        raise ConfigError("sqlite url option busy_timeout must be a number of seconds") from None
    sync = _SYNC.get(params.get("synchronous", "full").lower())
    if sync is None:
        raise ConfigError(f"sqlite url option synchronous must be one of {', '.join(_SYNC)}")
    return Path(rest), busy, sync


def _dict_row(cursor: sqlite3.Cursor, row: tuple[Any, ...]) -> Row:
    return {col[0]: value for col, value in zip(cursor.description, row, strict=True)}


@contextmanager
def _translated() -> Iterator[None]:
    """Map driver errors onto the store's error types (same ones as the PostgreSQL backend)."""
    try:
        yield
    except sqlite3.IntegrityError as exc:
        raise IntegrityError(str(exc)) from exc
    except sqlite3.Error as exc:
        raise StoreError(f"sqlite: {exc}") from exc


def _enable_wal(conn: sqlite3.Connection, busy: float) -> None:
    """Switch a new file to WAL. The switch needs an exclusive lock and SQLite does not run the
    busy handler for it, so processes opening a fresh file together get "database is locked"
    at once: retry until ``busy`` runs out (this runs in a worker thread, never on the loop)."""
    deadline = time.monotonic() + busy
    delay = 0.005
    while True:
        try:
            if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() + delay > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.1)


def _open(path: Path, busy: float, sync: str) -> sqlite3.Connection:
    with _translated():
        path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: we issue BEGIN/COMMIT ourselves, the driver never does implicitly
        conn = sqlite3.connect(
            str(path), timeout=busy, isolation_level=None, check_same_thread=False
        )
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(busy * 1000)}")
            _enable_wal(conn, busy)
            conn.execute(f"PRAGMA synchronous = {sync}")
            conn.execute("PRAGMA foreign_keys = ON")
        except BaseException:
            conn.close()
            raise
        conn.row_factory = _dict_row
        return conn


def _execute(conn: sqlite3.Connection, sql: str, args: Sequence[Any]) -> int:
    with _translated():
        return max(conn.execute(sql, args).rowcount, 0)


def _fetchone(conn: sqlite3.Connection, sql: str, args: Sequence[Any]) -> Row | None:
    with _translated():
        row: Row | None = conn.execute(sql, args).fetchone()
        return row


def _fetchall(conn: sqlite3.Connection, sql: str, args: Sequence[Any]) -> list[Row]:
    with _translated():
        return conn.execute(sql, args).fetchall()


def split_statements(script: str) -> list[str]:
    """Split on ``;`` only where SQLite agrees a statement is complete (strings, triggers)."""
    out: list[str] = []
    buf = ""
    for piece in script.split(";"):
        buf += piece + ";"
        if sqlite3.complete_statement(buf):
            if buf.strip(" \t\r\n;"):
                out.append(buf.strip())
            buf = ""
    if buf.strip(" \t\r\n;"):
        out.append(buf.strip().rstrip(";"))
    return out


def _script(conn: sqlite3.Connection, script: str) -> None:
    # not executescript(): that COMMITs first, which would end our transaction
    with _translated():
        for stmt in split_statements(script):
            conn.execute(stmt)


def _rollback(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:
        conn.execute("ROLLBACK")


def _commit(conn: sqlite3.Connection) -> None:
    with _translated():
        try:
            conn.execute("COMMIT")
        except sqlite3.Error:
            _rollback(conn)
            raise


class SQLiteTx:
    """A transaction on one pooled connection (all calls hop to a worker thread)."""

    def __init__(self, db: SQLiteDatabase, conn: sqlite3.Connection) -> None:
        self._db = db
        self._conn = conn

    async def execute(self, sql: str, *args: Any) -> int:
        return await self._db._thread(_execute, self._conn, sql, args)

    async def fetchone(self, sql: str, *args: Any) -> Row | None:
        return await self._db._thread(_fetchone, self._conn, sql, args)

    async def fetchall(self, sql: str, *args: Any) -> list[Row]:
        return await self._db._thread(_fetchall, self._conn, sql, args)

    async def script(self, sql: str) -> None:
        await self._db._thread(_script, self._conn, sql)


class SQLiteDatabase:
    dialect: Dialect = "sqlite"

    def __init__(self, url: str, *, pool_size: int = 4) -> None:
        self.url = url
        self.path, self._busy, self._sync = parse_url(url)
        self.pool_size = pool_size
        self._free: list[sqlite3.Connection] = []
        # anyio primitives made outside a running loop bind to the first loop that uses them
        self._slots = anyio.Semaphore(pool_size)
        self._limiter = anyio.CapacityLimiter(pool_size)
        self._writer = anyio.Lock()
        self._closed = False

    async def _thread(self, fn: Callable[..., T], *args: Any) -> T:
        return await anyio.to_thread.run_sync(fn, *args, limiter=self._limiter)

    def _new_connection(self) -> sqlite3.Connection:
        return _open(self.path, self._busy, self._sync)

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[sqlite3.Connection]:
        if self._closed:
            raise StoreError(f"database {self.url} is closed")
        async with self._slots:
            conn = self._free.pop() if self._free else await self._thread(self._new_connection)
            try:
                yield conn
            finally:
                if self._closed:
                    conn.close()
                else:
                    self._free.append(conn)

    async def connect(self) -> None:
        """Open the first connection now so a bad path or locked file fails at startup."""
        async with self._connection():
            pass

    async def close(self) -> None:
        self._closed = True
        free, self._free = self._free, []
        for conn in free:
            await self._thread(conn.close)

    @asynccontextmanager
    async def transaction(self, *, exclusive: bool = False) -> AsyncIterator[SQLiteTx]:
        async with self._writer, self._connection() as conn:
            await self._thread(_execute, conn, "BEGIN IMMEDIATE", ())
            try:
                yield SQLiteTx(self, conn)
            except BaseException:
                # shielded: a cancelled caller must still leave the connection clean for reuse
                with anyio.CancelScope(shield=True):
                    await self._thread(_rollback, conn)
                raise
            with anyio.CancelScope(shield=True):
                await self._thread(_commit, conn)

    async def fetchone(self, sql: str, *args: Any) -> Row | None:
        async with self._connection() as conn:
            return await self._thread(_fetchone, conn, sql, args)

    async def fetchall(self, sql: str, *args: Any) -> list[Row]:
        async with self._connection() as conn:
            return await self._thread(_fetchall, conn, sql, args)

    async def iterate(self, sql: str, *args: Any, batch: int = 1000) -> AsyncIterator[Row]:
        if self._closed:
            raise StoreError(f"database {self.url} is closed")
        conn = await self._thread(self._new_connection)
        try:
            with _translated():
                cursor = await self._thread(conn.execute, sql, args)
            while True:
                with _translated():
                    rows: list[Row] = await self._thread(cursor.fetchmany, batch)
                if not rows:
                    return
                for row in rows:
                    yield row
        finally:
            with anyio.CancelScope(shield=True):
                await self._thread(conn.close)

    async def migrate(self, migrations: Sequence[Migration]) -> list[Migration]:
        async def no_lock(tx: _migrate.ScriptTx) -> None:
            return None  # BEGIN IMMEDIATE already holds the file's write lock

        return await _migrate.apply(self.transaction, no_lock, self.dialect, migrations)
