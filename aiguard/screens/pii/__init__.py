"""The PII screen: presidio-analyzer, offline, behind a microsecond prefilter.

Importing this package is cheap; presidio and spaCy load in ``PIIScreen.load()``.
"""

from __future__ import annotations

from aiguard.screens.pii.entities import DEFAULT_ENTITIES, LANGUAGES, SUPPORTED_ENTITIES
from aiguard.screens.pii.redaction import PLACEHOLDERS, placeholder, redact
from aiguard.screens.pii.screen import PIIScreen

__all__ = [
    "DEFAULT_ENTITIES",
    "LANGUAGES",
    "PLACEHOLDERS",
    "SUPPORTED_ENTITIES",
    "PIIScreen",
    "placeholder",
    "redact",
]
