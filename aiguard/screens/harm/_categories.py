"""The harm taxonomy (OpenAI moderation's top level) and mappings from other vocabularies."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from aiguard.errors import ConfigError

CATEGORIES: tuple[str, ...] = (
    "hate",
    "harassment",
    "self-harm",
    "sexual",
    "sexual/minors",
    "violence",
    "illicit",
)

# Chosen for precision: a false block on an honest answer costs more than a miss that a
# stricter deployment can catch by lowering a threshold. Sexual/minors is the exception.
DEFAULT_THRESHOLDS: Mapping[str, float] = MappingProxyType(
    {
        "hate": 0.6,
        "harassment": 0.7,
        "self-harm": 0.5,
        "sexual": 0.6,
        "sexual/minors": 0.3,
        "violence": 0.6,
        "illicit": 0.6,
    }
)

# Llama Guard 3 hazard codes (MLCommons taxonomy) -> our categories. Codes without a sensible
# counterpart (S5 defamation, S7 privacy, S8 IP, S13 elections, S14 code abuse) map to nothing:
# those are other screens' business (pii, infringement) or out of scope.
LLAMA_GUARD: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "S1": ("violence",),  # violent crimes
        "S2": ("illicit",),  # non-violent crimes
        "S3": ("sexual", "illicit"),  # sex-related crimes
        "S4": ("sexual/minors",),  # child sexual exploitation
        "S6": ("illicit",),  # specialized advice (weapons, dangerous medical/financial)
        "S9": ("illicit", "violence"),  # indiscriminate weapons (CBRNE)
        "S10": ("hate",),
        "S11": ("self-harm",),  # suicide & self-harm
        "S12": ("sexual",),  # sexual content
    }
)

# OpenAI moderation category keys -> ours (both spellings the API has used).
OPENAI: Mapping[str, str] = MappingProxyType(
    {
        "hate": "hate",
        "hate/threatening": "hate",
        "harassment": "harassment",
        "harassment/threatening": "harassment",
        "self-harm": "self-harm",
        "self_harm": "self-harm",
        "self-harm/intent": "self-harm",
        "self_harm_intent": "self-harm",
        "self-harm/instructions": "self-harm",
        "self_harm_instructions": "self-harm",
        "sexual": "sexual",
        "sexual/minors": "sexual/minors",
        "sexual_minors": "sexual/minors",
        "violence": "violence",
        "violence/graphic": "violence",
        "violence_graphic": "violence",
        "illicit": "illicit",
        "illicit/violent": "illicit",
        "illicit_violent": "illicit",
    }
)


def canonical(category: str) -> str | None:
    """Our category for any spelling a backend or model may produce, or None."""
    key = category.strip().lower().replace(" ", "-")
    if key in CATEGORIES:
        return key
    return OPENAI.get(key) or OPENAI.get(key.replace("-", "_"))


def resolve_thresholds(overrides: Mapping[str, float] | None) -> dict[str, float]:
    """Defaults merged with overrides; unknown categories or scores outside (0, 1] are errors."""
    out = dict(DEFAULT_THRESHOLDS)
    for key, value in (overrides or {}).items():
        if key not in CATEGORIES:
            raise ConfigError(f"unknown harm category {key!r}; expected one of {CATEGORIES}")
        v = float(value)
        if not 0.0 < v <= 1.0:
            raise ConfigError(f"threshold for {key!r} must be in (0, 1], got {value!r}")
        out[key] = v
    return out


def merge_max(into: dict[str, float], scores: Mapping[str, float]) -> dict[str, float]:
    """Fold ``scores`` into ``into`` by category, keeping the maximum (scores clipped to [0,1])."""
    for cat, score in scores.items():
        c = canonical(cat)
        if c is not None:
            into[c] = max(into.get(c, 0.0), min(1.0, max(0.0, float(score))))
    return into
