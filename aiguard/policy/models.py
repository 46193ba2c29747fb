"""The policy: one validated, immutable pydantic model built once at startup."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from aiguard.policy._base import Section
from aiguard.policy.consent import ConsentPolicy
from aiguard.policy.disclosure import DisclosurePolicy
from aiguard.policy.identity import IdentityPolicy
from aiguard.policy.reports import ReportsPolicy
from aiguard.policy.screening import ScreeningPolicy
from aiguard.policy.storage import StoragePolicy

AnswerFormat = Literal["auto", "openai", "json", "text"]


class RouteRule(Section):
    """A guarded route. ``path`` is exact, or a prefix when it ends with ``*``."""

    path: str
    format: AnswerFormat = "auto"
    """``auto`` picks by content type and shape: OpenAI chat JSON/SSE, JSON with ``field``,
    ``text/plain`` streams."""
    field: str = "answer"
    """Dotted path of the answer text in plain JSON bodies, e.g. ``data.reply``."""
    methods: list[str] = Field(default_factory=lambda: ["POST"])

    @field_validator("path")
    @classmethod
    def _absolute(cls, v: str) -> str:
        if not v.startswith("/"):
            raise ValueError("must start with '/'")
        return v


def _default_routes() -> list[RouteRule]:
    return [RouteRule(path="/v1/chat/completions"), RouteRule(path="/chat")]


class Policy(Section):
    routes: list[RouteRule] = Field(default_factory=_default_routes)
    """Guarded routes: ``path`` (exact, or prefix ending in ``*``), ``format`` (``auto``,
    ``openai``, ``json``, ``text``), ``field`` (dotted path of the answer in plain JSON),
    ``methods``."""
    prefix: str = "/aiguard"
    """Where aiguard serves its own API (consent, reports, widget)."""
    provider: str = "aiguard"
    """Who produces the content (``AI-Disclosure`` provider, label ``ContentProducer``)."""
    model: str | None = None
    """Model name for metadata when the answer does not say."""
    locale: str | None = None
    """Fixed locale; unset negotiates from ``Accept-Language``."""
    default_locale: str = "en"
    """Used when negotiation finds no supported language (and for LLM prompts)."""
    prompts_dir: Path | None = None
    """Folder of ``<locale>/<name>.toml`` texts; unset uses the packaged ``prompts/``."""
    max_body_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    """JSON answers above this pass through unmodified (with a warning); request bodies above
    it get 413."""

    disclosure: DisclosurePolicy = Field(default_factory=DisclosurePolicy)
    identity: IdentityPolicy = Field(default_factory=IdentityPolicy)
    consent: ConsentPolicy = Field(default_factory=ConsentPolicy)
    screening: ScreeningPolicy = Field(default_factory=ScreeningPolicy)
    reports: ReportsPolicy = Field(default_factory=ReportsPolicy)
    storage: StoragePolicy = Field(default_factory=StoragePolicy)

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, v: str) -> str:
        if not v.startswith("/") or v.endswith("/") or len(v) < 2:
            raise ValueError("must start with '/' and not end with '/'")
        return v
