from __future__ import annotations

from typing import Literal

from pydantic import Field

from aiguard.policy._base import Section


class DisclosurePolicy(Section):
    """When and how answers say that they come from an AI."""

    mode: Literal["first", "every", "interval", "off"] = "first"
    """Human-readable disclosure: first answer of a conversation, every answer, every
    ``interval_minutes`` per conversation, or never (machine-readable metadata is always sent)."""
    interval_minutes: int = Field(default=30, ge=1)
    """With ``mode = "interval"``: show the disclosure again after this many minutes."""
    header: bool = True
    """Send the ``AI-Disclosure`` response header (IETF draft-abaris-aicdh shape)."""
    metadata: bool = True
    """Add the ``aiguard`` object to JSON answers and to the first chunk of a stream."""
    separator: str = "\n\n"
    """Placed between the disclosure text and the answer."""
