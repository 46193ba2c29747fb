"""Open a database by URL: ``sqlite:///path.db`` or ``postgresql://user@host:port/db``.

The backend modules import their drivers lazily, so ``import aiguard.store`` never needs asyncpg.
"""

from __future__ import annotations

from aiguard.errors import ConfigError
from aiguard.store.base import Database, Dialect, Migration, Row, Tx
from aiguard.store.errors import IntegrityError

__all__ = [
    "Database",
    "Dialect",
    "IntegrityError",
    "Migration",
    "Row",
    "Tx",
    "open_database",
]


def open_database(url: str, *, pool_size: int = 4) -> Database:
    """Build (but do not connect) the backend for ``url``.

    Connections open on ``await db.connect()`` or lazily on first use. Raises ``ConfigError``
    for an unknown scheme and ``MissingExtraError`` when PostgreSQL is asked for without asyncpg.
    """
    if pool_size < 1:
        raise ConfigError("pool_size must be at least 1")
    scheme = url.partition(":")[0].lower()
    if scheme == "sqlite":
        from aiguard.store.sqlite import SQLiteDatabase

        return SQLiteDatabase(url, pool_size=pool_size)
    if scheme in {"postgres", "postgresql"}:
        from aiguard.store.postgres import PostgresDatabase

        return PostgresDatabase(url, pool_size=pool_size)
    raise ConfigError(
        f"unsupported storage url scheme {scheme!r}: use sqlite:///path.db or postgresql://..."
    )
