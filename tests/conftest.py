"""Shared fixtures: real SQLite files in tmp dirs, the real PostgreSQL server, loopback servers."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

PG_URL = os.environ.get("AIGUARD_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"


def _pg_reachable(url: str) -> str | None:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 5432), 2):
            return None
    except OSError as exc:
        return f"PostgreSQL at {parts.hostname}:{parts.port} is unreachable ({exc})"


@pytest.fixture(scope="session")
def pg_server_url() -> str:
    """The PostgreSQL server URL; skip with the reason off CI, fail under CI=true."""
    problem = _pg_reachable(PG_URL)
    if problem:
        if IN_CI:
            pytest.fail(f"{problem}; CI requires it (.ci/run starts it)")
        pytest.skip(f"{problem}; set AIGUARD_TEST_PG_URL or start PostgreSQL to run these")
    return PG_URL


@pytest.fixture
def pg_url(pg_server_url: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL schema per test (search_path set through the URL options)."""
    import asyncio

    import asyncpg

    schema = "t_" + uuid.uuid4().hex[:12]

    async def run(sql: str) -> None:
        conn = await asyncpg.connect(pg_server_url)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in pg_server_url else "?"
    yield f"{pg_server_url}{sep}options=-csearch_path%3D{schema}"
    asyncio.run(run(f'DROP SCHEMA "{schema}" CASCADE'))


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'aiguard.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Run a test against both backends."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'aiguard.db'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture(scope="session")
def datasets() -> Path:
    if not DATASETS.is_dir():
        pytest.skip(f"development datasets not found at {DATASETS}")
    return DATASETS


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
