from __future__ import annotations

from pydantic import Field

from aiguard.policy._base import Section


class ReportsPolicy(Section):
    """Message records and inaccuracy reports."""

    enabled: bool = True
    store_answers: bool = True
    """Keep answer text in message records; ``false`` keeps only its sha256."""
    retention_days: int = Field(default=90, ge=1)
