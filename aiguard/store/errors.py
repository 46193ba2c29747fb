"""Store-specific errors (both backends raise the same ones, so services stay dialect-free)."""

from __future__ import annotations

from aiguard.errors import StoreError


class IntegrityError(StoreError):
    """A constraint (unique, foreign key, not null, check) rejected a write."""

    code = "store_integrity"
