from __future__ import annotations

import re

from pydantic import Field, SecretStr, field_validator, model_validator

from aiguard.policy._base import Section

_PURPOSE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


class PurposeInfo(Section):
    """How one purpose is described in Kantara consent receipts (``services[].purposes[]``)."""

    category: list[str] = Field(default_factory=lambda: ["Core Function"])
    """``purposeCategory``: Kantara purpose categories, e.g. ``Core Function``,
    ``Improve Performance``, ``Contracting for Services``."""
    pii_categories: list[str] = Field(default_factory=lambda: ["Conversation content"])
    """``piiCategory``: what personal data the purpose processes."""
    primary: bool = True
    """``primaryPurpose``: is it needed for the service the subject asked for."""
    termination: str = "Until withdrawn at {prefix}/consent/withdraw"
    """``termination``: when consent ends (``{prefix}`` is replaced by the API prefix)."""
    third_party_disclosure: bool = False
    """``thirdPartyDisclosure``: is data disclosed to a third party under this purpose."""
    third_party_name: str | None = None
    """``thirdPartyName``, required by Kantara when ``third_party_disclosure`` is true."""


def _default_purpose_info() -> dict[str, PurposeInfo]:
    return {
        "ai_interaction": PurposeInfo(),
        "provider_processing": PurposeInfo(
            third_party_disclosure=True, third_party_name="AI model provider"
        ),
        "transcript_retention": PurposeInfo(
            category=["Improve Performance"], primary=False, pii_categories=["Chat transcripts"]
        ),
    }


class ControllerInfo(Section):
    """The PII controller named in consent receipts (``piiControllers[0]``)."""

    name: str | None = None
    """``piiController``; unset uses the policy's ``provider``."""
    contact: str = ""
    """``contact``: a person or role to contact, e.g. the data protection officer."""
    address: str = ""
    """``address.streetAddress``: the postal address on one line."""
    country: str = ""
    """``address.addressCountry``: ISO 3166-1 alpha-2 country code."""
    email: str = ""
    """Controller contact e-mail in receipts (``piiControllers[].email``)."""
    phone: str = ""
    """Controller phone in receipts (``piiControllers[].phone``)."""
    url: str | None = None
    """``piiControllerUrl``."""


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
    """The prompt (under ``prompts/<locale>/``) shown as the consent notice. Raising its
    ``version`` makes every earlier grant stale: subjects must consent again."""
    jurisdiction: str = "EU"
    """Recorded with every consent and in receipts (``jurisdiction``), e.g. ``EU``, ``CN``."""
    admin_token: SecretStr | None = None
    """Bearer token for the HTTP compliance export; unset disables that endpoint."""
    cache_ttl_seconds: float = Field(default=5.0, ge=0)
    """How long a gate decision is reused. A consent change made through this process takes
    effect at once; one made through another replica within this many seconds."""
    cache_max_subjects: int = Field(default=100_000, ge=1)
    """Gate decisions kept in memory at most (oldest dropped first)."""

    # --- evidence and erasure ----------------------------------------------------------------
    evidence_salt: SecretStr | None = None
    """Key for the evidence hashes (IP prefix, user agent). Unset uses ``identity.secret``; if
    that is unset too, a random salt is created once and kept in the database (weaker: a copy of
    the database then suffices to test guesses)."""

    # --- consent receipts (Kantara v1.1) -------------------------------------------------------
    controller: ControllerInfo = Field(default_factory=ControllerInfo)
    policy_url: str = ""
    """``policyUrl``: the privacy notice the receipt refers to."""
    service: str | None = None
    """``services[].service``; unset uses the policy's ``provider``."""
    purpose_info: dict[str, PurposeInfo] = Field(default_factory=_default_purpose_info)
    """Receipt details per purpose; purposes not listed get the ``PurposeInfo`` defaults."""
    sensitive: bool = False
    """``sensitive``: whether special-category data is involved."""
    spi_categories: list[str] = Field(default_factory=list)
    """``spiCat``: the special categories, when ``sensitive``."""

    @field_validator("purposes")
    @classmethod
    def _names(cls, v: list[str]) -> list[str]:
        for p in v:
            if not _PURPOSE.match(p):
                raise ValueError(f"purpose {p!r}: use lowercase letters, digits and '_'")
        if len(set(v)) != len(v):
            raise ValueError("purposes must be unique")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> ConsentPolicy:
        unknown = [p for p in self.required if p not in self.purposes]
        if unknown:
            raise ValueError(f"required purposes not in purposes: {', '.join(unknown)}")
        extra = [p for p in self.purpose_info if p not in self.purposes]
        if extra and "purpose_info" in self.model_fields_set:
            raise ValueError(f"purpose_info for unknown purposes: {', '.join(extra)}")
        if self.admin_token is not None and len(self.admin_token.get_secret_value()) < 16:
            raise ValueError("admin_token: use at least 16 characters")
        if self.evidence_salt is not None and len(self.evidence_salt.get_secret_value()) < 16:
            raise ValueError("evidence_salt: use at least 16 characters")
        return self
