from __future__ import annotations

from pydantic import Field

from aiguard.policy._base import Section


class StoragePolicy(Section):
    """Where consent records, message records and reports are kept."""

    url: str = "sqlite:///var/aiguard.db"
    """``sqlite:///relative/or/absolute/path.db`` or ``postgresql://user@host:port/db``."""
    pool_size: int = Field(default=4, ge=1, le=64)
    """Connections (PostgreSQL) or worker threads (SQLite) per process."""
