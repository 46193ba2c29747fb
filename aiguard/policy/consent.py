from __future__ import annotations

from pydantic import Field, SecretStr

from aiguard.policy._base import Section


class ConsentPolicy(Section):
    """Which purposes need recorded consent before chat, and the compliance export settings."""

    purposes: list[str] = Field(
        default_factory=lambda: ["ai_interaction", "provider_processing", "transcript_retention"]
    )
    """Every purpose a subject may grant or refuse."""
    required: list[str] = Field(default_factory=list)
    """Purposes that must be granted before a guarded chat request reaches the chatbot.
    Empty means the gate is off."""
    notice: str = "consent_notice"
    """The prompt (under ``prompts/<locale>/``) shown as the consent notice."""
    jurisdiction: str = "EU"
    admin_token: SecretStr | None = None
    """Bearer token for the HTTP compliance export; unset disables that endpoint."""
    cache_ttl_seconds: float = Field(default=5.0, ge=0)
