"""The record of one guarded answer, handed by the middleware to the record writer."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class MessageRecord:
    message_id: str
    conversation_id: str
    subject_id: str  # pseudonym (HMAC), never the raw id
    route: str
    model: str | None
    locale: str
    status: int  # upstream HTTP status
    streamed: bool
    disclosure: dict[str, str] | None  # Text.ref() of the disclosure shown, None if not shown
    verdict: str  # "allow" | "redact" | "block" | "unscreened"
    screening: dict[str, Any] = field(default_factory=dict)  # PipelineResult.to_json()
    answer: str = ""  # the text sent to the user (after disclosure/screening)
    created_at: float = 0.0  # epoch seconds, server clock
