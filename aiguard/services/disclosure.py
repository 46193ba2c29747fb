"""What to disclose, and when: the human-readable text, the header and the metadata object."""

from __future__ import annotations

import time
from collections import OrderedDict
from functools import lru_cache
from typing import Any

from aiguard.policy.models import Policy
from aiguard.policy.prompts import Catalogue, Text

_MAX_CONVERSATIONS = 100_000


def _sf_string(value: str) -> str:
    """An RFC 9651 sf-string: printable ASCII only, with ``\\`` and ``"`` escaped."""
    clean = "".join(c if " " <= c <= "~" else "?" for c in value)
    return '"' + clean.replace("\\", "\\\\").replace('"', '\\"') + '"'


@lru_cache(maxsize=64)
def ai_disclosure_header(provider: str, model: str | None, when: int) -> str:
    """``AI-Disclosure`` (IETF draft-abaris-aicdh): an RFC 9651 dictionary.

    ``when`` is whole seconds, so the cache serves every answer of the same second.
    """
    parts = ["mode=machine-generated", f"provider={_sf_string(provider)}"]
    if model:
        parts.append(f"model={_sf_string(model)}")
    parts.append(f"date=@{when}")
    return ", ".join(parts)


class DisclosureService:
    """Decides per answer whether the human-readable disclosure is shown.

    ``first`` is stateless for OpenAI-style requests (the first answer is the one whose request
    carries no assistant turn); otherwise it falls back to a per-process record of conversations
    (bounded LRU), which is also what ``interval`` uses.
    """

    def __init__(self, policy: Policy, catalogue: Catalogue) -> None:
        self._policy = policy.disclosure
        self._provider = policy.provider
        self._catalogue = catalogue
        self._last_shown: OrderedDict[str, float] = OrderedDict()
        self._texts: dict[str, Text] = {}  # per locale; locales are a small closed set

    def text(self, locale: str) -> Text:
        found = self._texts.get(locale)
        if found is None:
            found = self._texts[locale] = self._catalogue.text("disclosure", locale)
        return found

    def should_show(
        self, conversation_id: str, has_assistant_turn: bool | None, now: float | None = None
    ) -> bool:
        mode = self._policy.mode
        if mode == "off":
            return False
        if mode == "every":
            return True
        now = time.time() if now is None else now
        if mode == "first" and has_assistant_turn is not None:
            return not has_assistant_turn
        last = self._last_shown.get(conversation_id)
        if mode == "first":
            show = last is None
        else:
            show = last is None or now - last >= self._policy.interval_minutes * 60
        if show:
            self._last_shown[conversation_id] = now
            self._last_shown.move_to_end(conversation_id)
            if len(self._last_shown) > _MAX_CONVERSATIONS:
                self._last_shown.popitem(last=False)
        return show

    def metadata(self, text: Text, shown: bool, message_id: str) -> dict[str, Any]:
        """The ``aiguard`` object: machine-readable disclosure, GB 45438-2025 implicit label."""
        return {
            "ai_generated": True,
            "message_id": message_id,
            "disclosure": {**text.ref(), "shown": shown},
            "label": {
                "AIGC": {
                    "Label": "1",
                    "ContentProducer": self._provider,
                    "ProduceID": message_id,
                }
            },
        }
