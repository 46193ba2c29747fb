"""One error hierarchy: every aiguard error is an ``AIGuardError`` with a stable ``code``.

Subclasses also inherit the matching builtin so callers can catch what they already know.
"""

from __future__ import annotations


class AIGuardError(Exception):
    """Root of every error aiguard raises on purpose."""

    code: str = "aiguard_error"


class ConfigError(AIGuardError, ValueError):
    """The policy or a setting is invalid; raised at configuration time, never mid-request."""

    code = "config_error"


class StoreError(AIGuardError, RuntimeError):
    """The storage backend failed or is unreachable."""

    code = "store_error"


class MissingExtraError(AIGuardError, ImportError):
    """An optional dependency is missing; the message names the extra to install."""

    code = "missing_extra"

    def __init__(self, package: str, extra: str) -> None:
        super().__init__(f"{package} is not installed: pip install 'aiguard[{extra}]'")


class ScreenError(AIGuardError, RuntimeError):
    """A screen failed while screening (the pipeline applies fail-open/closed)."""

    code = "screen_error"


class ChainBrokenError(AIGuardError, ValueError):
    """A hash-chained log failed verification."""

    code = "chain_broken"
