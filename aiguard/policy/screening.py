from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from aiguard.policy._base import Section

# The values of ``aiguard.screens.base.Action``; spelled out so policy never imports screens.
ActionName = Literal["block", "redact", "annotate"]


def _default_actions() -> dict[str, ActionName]:
    # Keys are span labels or screen instance names; a label wins over its screen's name.
    return {
        "pii": "redact",  # keep the answer useful, hide the identifier
        "harm": "block",  # a harmful sentence taints the whole answer
        "verbatim": "block",  # a long quote of a protected work cannot be "redacted" usefully
        "denylist": "redact",  # a whole-word term match: hiding the term is proportionate
        "screen_error": "block",
    }


class InfringementPolicy(Section):
    """Settings of the built-in ``infringement`` screen (verbatim quotes + deny-list)."""

    corpus_dir: Path | None = None
    """Folder of UTF-8 ``.txt`` files holding the protected works (searched recursively).
    The work's name is the file's title line when it starts with ``Title:``, else its file name."""
    min_words: int = Field(default=50, ge=8)
    """Flag an answer that reproduces at least this many consecutive words of a work."""
    min_chars: int = Field(default=300, ge=40)
    """... or at least this many characters of a work (whichever is reached first)."""
    min_work_fraction: float = Field(default=0.5, gt=0, le=1)
    """... or this fraction of a short work (a whole poem may be shorter than ``min_words``)."""
    shingle_words: int = Field(default=8, ge=4, le=16)
    """Words per hashed shingle: the shortest run the index can see at all."""
    cache_dir: Path | None = None
    """Where to keep the built index, keyed by the corpus content hash; unset builds in memory
    at every start."""
    denylist: list[str] = Field(default_factory=list)
    """Terms and trademarks matched case-insensitively as whole words (CJK terms as substrings)."""

    @field_validator("denylist")
    @classmethod
    def _no_blank_terms(cls, v: list[str]) -> list[str]:
        if any(not t.strip() for t in v):
            raise ValueError("deny-list terms must not be blank")
        return v


class PIIPolicy(Section):
    """Settings of the built-in ``pii`` screen (read by ``PIIScreen.from_policy``)."""

    entities: list[str] | None = None
    """Entity types to find, e.g. ``["EMAIL_ADDRESS", "PHONE_NUMBER"]``; unset: the screen's
    defaults. Unknown names are a configuration error when the screen is built."""
    languages: list[str] | None = None
    """Subset of en, zh, nl, de, fr, es to build recognizers for; unset: all six."""
    score_threshold: float | None = Field(default=None, ge=0, le=1)
    """The screen's own bar; unset: ``thresholds["pii"]``, else ``min_score``."""
    ner_models: dict[str, str] | None = None
    """Language -> installed spaCy pipeline for PERSON/LOCATION (``{"en": "en_core_web_sm"}``);
    ``{}`` turns NER off. Nothing is ever downloaded."""


class HarmPolicy(Section):
    """Settings of the built-in ``harm`` screen (read by ``HarmScreen.from_policy``; options that
    do not belong to the chosen backend are a configuration error when the screen is built)."""

    backend: Literal["local", "openai", "llm"] = "local"
    """``local``: offline classifier + rules; ``openai``: the Moderation API; ``llm``: a LangChain
    chat model as judge (needs a ``chat_model`` object, so it is built in code, not here)."""
    thresholds: dict[str, float] | None = None
    """Per harm category score bar, e.g. ``{"hate": 0.7}``; unset: the screen's defaults."""
    categories: list[str] | None = None
    """Categories to enforce; unset: all."""
    model_path: Path | None = None
    """local: a trained model file instead of the packaged one."""
    lexicon_path: Path | None = None
    """local: a rules lexicon instead of the packaged one."""
    offload_chars: int | None = Field(default=None, ge=0)
    """local: answers longer than this are classified in a worker thread."""
    model: str | None = None
    """openai: the moderation model."""
    api_key: str | None = None
    """openai: API key (prefer ``AIGUARD_SCREENING__HARM__API_KEY`` or ``OPENAI_API_KEY``)."""
    base_url: str | None = None
    """openai: endpoint of a compatible server."""
    timeout: float | None = Field(default=None, gt=0)
    """openai: seconds per call."""
    max_retries: int | None = Field(default=None, ge=0)
    """openai: retries per call."""


class ScreeningPolicy(Section):
    """Which screens run over answers, and what happens to what they find."""

    enabled: bool = True
    """Screen answers at all; ``false`` sends them unscreened (disclosure still applies)."""
    screens: list[str] = Field(default_factory=lambda: ["pii", "harm"])
    """Screen instance names, looked up in ``aiguard.screens.registry`` (built-ins: ``pii``,
    ``harm``, ``infringement``)."""
    fail_mode: Literal["open", "closed"] = "closed"
    """What a screen that raises or times out means: ``closed`` blocks the answer, ``open``
    lets it through with the error recorded."""
    timeout_seconds: float = Field(default=2.0, gt=0)
    """Per screen and per call (one answer, or one streamed window)."""
    window_chars: int = Field(default=200, ge=16, le=8192)
    """Streaming: the most text held back while waiting for a sentence boundary."""
    actions: dict[str, ActionName] = Field(default_factory=_default_actions)
    """``label or screen name -> block | redact | annotate``. Merged over the defaults
    (``pii: redact``, ``harm: block``, ``verbatim: block``, ``denylist: redact``); a finding with no
    entry follows its screen's own verdict."""
    min_score: float = Field(default=0.5, ge=0, le=1)
    """Default score bar for screens that take theirs from the policy (``pii``); a screen's
    findings are already above its own bar when it proposes redact or block."""
    thresholds: dict[str, float] = Field(default_factory=dict)
    """Per label or screen name: findings scoring below are recorded but not acted on (raises
    a screen's own bar; it cannot lower it). ``pii`` here is also the PII screen's bar."""
    route_screens: dict[str, list[str]] = Field(default_factory=dict)
    """Per route path (as in ``routes``, exact or ``prefix*``) the subset of ``screens`` to run."""
    pii: PIIPolicy = Field(default_factory=PIIPolicy)
    harm: HarmPolicy = Field(default_factory=HarmPolicy)
    infringement: InfringementPolicy = Field(default_factory=InfringementPolicy)

    @field_validator("actions")
    @classmethod
    def _merge_defaults(cls, v: dict[str, ActionName]) -> dict[str, ActionName]:
        return {**_default_actions(), **v}

    @field_validator("thresholds")
    @classmethod
    def _scores(cls, v: dict[str, float]) -> dict[str, float]:
        bad = [k for k, s in v.items() if not 0.0 <= s <= 1.0]
        if bad:
            raise ValueError(f"thresholds must be in [0, 1]: {', '.join(bad)}")
        return v

    @model_validator(mode="after")
    def _routes_use_known_screens(self) -> ScreeningPolicy:
        if len(set(self.screens)) != len(self.screens):
            raise ValueError("screens must not repeat a name")
        for route, names in self.route_screens.items():
            unknown = sorted(set(names) - set(self.screens))
            if unknown:
                raise ValueError(
                    f"route_screens[{route!r}] names screens not in 'screens': {unknown}"
                )
        return self

    def threshold(self, label: str, screen: str) -> float:
        """The pipeline's bar for a finding: set per label or screen, else none (0)."""
        return self.thresholds.get(label, self.thresholds.get(screen, 0.0))

    def screens_for(self, route: str) -> list[str]:
        """Screen names for ``route``: exact entry, then longest ``prefix*``, else all."""
        if route in self.route_screens:
            return self.route_screens[route]
        best: tuple[int, list[str]] | None = None
        for pattern, names in self.route_screens.items():
            prefix = pattern.endswith("*") and route.startswith(pattern[:-1])
            if prefix and (best is None or len(pattern) > best[0]):
                best = (len(pattern), names)
        return best[1] if best else self.screens
