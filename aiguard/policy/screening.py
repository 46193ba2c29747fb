from __future__ import annotations

from typing import Literal

from pydantic import Field

from aiguard.policy._base import Section


class ScreeningPolicy(Section):
    """Which screens run over answers, and what happens to what they find."""

    enabled: bool = True
    screens: list[str] = Field(default_factory=lambda: ["pii", "harm"])
    fail_mode: Literal["open", "closed"] = "closed"
    timeout_seconds: float = Field(default=2.0, gt=0)
    window_chars: int = Field(default=200, ge=16, le=8192)
