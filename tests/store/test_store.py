"""The store contract, run against real SQLite files and the real PostgreSQL server."""

from __future__ import annotations

import sqlite3
import sys
import time
from collections.abc import AsyncGenerator
from contextlib import aclosing
from pathlib import Path
from typing import cast

import anyio
import pytest

from aiguard.errors import ConfigError, MissingExtraError, StoreError
from aiguard.store import Database, IntegrityError, Migration, Row, open_database
from aiguard.store.postgres import to_dollar
from aiguard.store.sqlite import parse_url, split_statements

pytestmark = pytest.mark.anyio

ITEMS = Migration(
    "test",
    1,
    "items",
    sqlite="CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, n INTEGER);"
    "CREATE INDEX items_n ON items (n)",
    postgres="CREATE TABLE items (id BIGSERIAL PRIMARY KEY, name TEXT NOT NULL UNIQUE, n BIGINT);"
    "CREATE INDEX items_n ON items (n)",
)
ITEMS_V2 = Migration(
    "test",
    2,
    "items note",
    sqlite="ALTER TABLE items ADD COLUMN note TEXT DEFAULT 'a;b'",
    postgres="ALTER TABLE items ADD COLUMN note TEXT DEFAULT 'a;b'",
)


async def test_roundtrip_rows_are_dicts(db_url: str) -> None:
    db = open_database(db_url)
    await db.connect()
    try:
        assert await db.migrate([ITEMS_V2, ITEMS]) == [ITEMS, ITEMS_V2]
        async with db.transaction() as tx:
            assert await tx.execute("INSERT INTO items (name, n) VALUES (?, ?)", "a", 1) == 1
            assert await tx.execute("INSERT INTO items (name, n) VALUES (?, ?)", "b?", 2) == 1
            assert await tx.fetchone("SELECT n FROM items WHERE name = 'b?'") == {"n": 2}
        assert await db.fetchone("SELECT name, n, note FROM items WHERE n = ?", 1) == {
            "name": "a",
            "n": 1,
            "note": "a;b",
        }
        assert await db.fetchone("SELECT name FROM items WHERE n = ?", 99) is None
        rows = await db.fetchall("SELECT name FROM items ORDER BY n")
        assert rows == [{"name": "a"}, {"name": "b?"}]
        async with db.transaction() as tx:
            assert await tx.execute("UPDATE items SET n = n + 10") == 2
            assert [r["n"] for r in await tx.fetchall("SELECT n FROM items ORDER BY n")] == [11, 12]
    finally:
        await db.close()


async def test_error_rolls_back_and_integrity_is_typed(db_url: str) -> None:
    db = open_database(db_url)
    try:
        await db.migrate([ITEMS])
        with pytest.raises(RuntimeError, match="boom"):
            async with db.transaction() as tx:
                await tx.execute("INSERT INTO items (name, n) VALUES (?, ?)", "gone", 1)
                raise RuntimeError("boom")
        with pytest.raises(IntegrityError):
            async with db.transaction(exclusive=True) as tx:
                await tx.execute("INSERT INTO items (name, n) VALUES (?, ?)", "x", 1)
                await tx.execute("INSERT INTO items (name, n) VALUES (?, ?)", "x", 2)
        with pytest.raises(StoreError):
            await db.fetchall("SELECT nope FROM items")
        assert await db.fetchall("SELECT * FROM items") == []
        # the pool is still usable after errors
        async with db.transaction() as tx:
            await tx.execute("INSERT INTO items (name, n) VALUES (?, ?)", "ok", 1)
        assert await db.fetchone("SELECT count(*) AS c FROM items") == {"c": 1}
    finally:
        await db.close()


async def test_migrations_apply_once_even_when_started_together(db_url: str) -> None:
    dbs = [open_database(db_url, pool_size=2) for _ in range(3)]
    try:
        results: list[list[Migration]] = []

        async def start(db: Database) -> None:
            results.append(await db.migrate([ITEMS, ITEMS_V2]))

        async with anyio.create_task_group() as tg:
            for db in dbs:
                tg.start_soon(start, db)
        applied = [m for r in results for m in r]
        assert sorted(m.version for m in applied) == [1, 2]
        assert await dbs[0].migrate([ITEMS, ITEMS_V2]) == []
        rows = await dbs[0].fetchall(
            "SELECT component, version, name FROM aiguard_migrations ORDER BY version"
        )
        assert rows == [
            {"component": "test", "version": 1, "name": "items"},
            {"component": "test", "version": 2, "name": "items note"},
        ]
    finally:
        for db in dbs:
            await db.close()


async def test_exclusive_transactions_do_not_lose_updates(db_url: str) -> None:
    """Read-modify-write from two pools (separate connections) must serialise."""
    dbs = [open_database(db_url, pool_size=2) for _ in range(2)]
    await dbs[0].migrate([ITEMS])
    async with dbs[0].transaction() as tx:
        await tx.execute("INSERT INTO items (name, n) VALUES ('counter', 0)")
    lock = " FOR UPDATE" if dbs[0].dialect == "postgres" else ""

    async def bump(i: int) -> None:
        async with dbs[i % 2].transaction(exclusive=True) as tx:
            row = await tx.fetchone(f"SELECT n FROM items WHERE name = 'counter'{lock}")
            assert row is not None
            await anyio.sleep(0)
            await tx.execute("UPDATE items SET n = ? WHERE name = 'counter'", row["n"] + 1)

    try:
        async with anyio.create_task_group() as tg:
            for i in range(40):
                tg.start_soon(bump, i)
        assert await dbs[1].fetchone("SELECT n FROM items WHERE name = 'counter'") == {"n": 40}
    finally:
        for db in dbs:
            await db.close()


async def test_iterate_streams_in_batches(db_url: str) -> None:
    db = open_database(db_url, pool_size=1)
    try:
        await db.migrate([ITEMS])
        async with db.transaction() as tx:
            if db.dialect == "postgres":
                await tx.execute(
                    "INSERT INTO items (name, n) SELECT 'i' || g, g FROM generate_series(1, 5000) g"
                )
            else:
                await tx.execute(
                    "WITH RECURSIVE g(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM g WHERE x < 5000)"
                    " INSERT INTO items (name, n) SELECT 'i' || x, x FROM g"
                )
        seen = 0
        rows = db.iterate("SELECT n FROM items WHERE n > ? ORDER BY n", 0, batch=64)
        async with aclosing(cast(AsyncGenerator[Row, None], rows)) as it:
            async for row in it:
                seen += 1
                assert row == {"n": seen}
                if seen == 100:
                    # the single pool slot is free while the export runs, so writes go on
                    async with db.transaction() as tx:
                        await tx.execute("INSERT INTO items (name, n) VALUES ('late', 0)")
                if seen == 300:
                    break
        assert seen == 300
        total = 0
        async for _ in db.iterate("SELECT id FROM items"):
            total += 1
        assert total == 5001
    finally:
        await db.close()


async def test_sqlite_waits_for_a_foreign_writer_without_blocking_the_loop(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dir" / "w.db"
    db = open_database(f"sqlite:///{path}")
    await db.migrate([ITEMS])
    assert path.parent.is_dir()
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    ticks = 0
    done = anyio.Event()

    async def writer() -> None:
        async with db.transaction(exclusive=True) as tx:
            await tx.execute("INSERT INTO items (name, n) VALUES ('after', 1)")
        done.set()

    async def heartbeat() -> None:
        nonlocal ticks
        while not done.is_set():
            ticks += 1
            await anyio.sleep(0.01)

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(writer)
            tg.start_soon(heartbeat)
            await anyio.sleep(0.3)
            assert not done.is_set()
            other.execute("COMMIT")
        assert ticks >= 10
        assert await db.fetchone("SELECT n FROM items WHERE name = 'after'") == {"n": 1}
        mode = await db.fetchone("PRAGMA journal_mode")
        assert mode is not None and next(iter(mode.values())) == "wal"
        fk = await db.fetchone("PRAGMA foreign_keys")
        assert fk is not None and next(iter(fk.values())) == 1
    finally:
        other.close()
        await db.close()


def test_sqlite_url_forms(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert parse_url("sqlite:///var/a.db") == (Path("var/a.db"), 30.0, "FULL")
    assert parse_url("sqlite:////abs/a.db?synchronous=normal&busy_timeout=2") == (
        Path("/abs/a.db"),
        2.0,
        "NORMAL",
    )
    for bad in ["sqlite://a.db", "sqlite:///:memory:", "sqlite:///a.db?x=1", "mysql://x"]:
        with pytest.raises(ConfigError):
            open_database(bad)


async def test_relative_sqlite_path_is_relative_to_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    db = open_database("sqlite:///rel/x.db")
    await db.connect()
    await db.close()
    assert (tmp_path / "rel" / "x.db").is_file()


def test_missing_asyncpg_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "asyncpg", None)
    with pytest.raises(MissingExtraError, match=r"aiguard\[postgres\]"):
        open_database("postgresql://u@127.0.0.1/db")


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT 1", "SELECT 1"),
        ("SELECT ? , ?", "SELECT $1 , $2"),
        ("SELECT '?', ? -- what?\n, ?", "SELECT '?', $1 -- what?\n, $2"),
        ("SELECT 'it''s ?', \"col?\", /* ? */ ?", "SELECT 'it''s ?', \"col?\", /* ? */ $1"),
        ("INSERT INTO t VALUES (?,?,?)", "INSERT INTO t VALUES ($1,$2,$3)"),
    ],
)
def test_placeholder_rewrite(sql: str, expected: str) -> None:
    assert to_dollar(sql) == expected
    assert to_dollar(sql) is to_dollar(sql)  # cached per SQL string


def test_split_statements_respects_strings_and_triggers() -> None:
    script = (
        "CREATE TABLE a (x TEXT DEFAULT 'p;q');"
        "CREATE TRIGGER t AFTER INSERT ON a BEGIN UPDATE a SET x = 'r;s'; END;"
        "  ;"
    )
    assert len(split_statements(script)) == 2


def test_store_calls_take_microseconds_of_loop_time() -> None:
    """Guard against accidental sync I/O: the rewrite cache makes repeated SQL free."""
    sql = "SELECT " + ", ".join("?" for _ in range(50))
    to_dollar(sql)
    t = time.perf_counter()
    for _ in range(1000):
        to_dollar(sql)
    assert time.perf_counter() - t < 0.05


def test_backends_satisfy_the_protocol(tmp_path: Path) -> None:
    assert isinstance(open_database(f"sqlite:///{tmp_path / 'p.db'}"), Database)
    assert isinstance(open_database("postgresql://u@127.0.0.1:1/db"), Database)
