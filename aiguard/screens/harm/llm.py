"""Any LangChain chat model as a harm judge, prompted from ``prompts/<locale>/harm_judge.toml``."""

from __future__ import annotations

from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage, SystemMessage

from aiguard.policy.prompts import Catalogue, Text
from aiguard.screens.harm._parse import parse_verdict

PROMPT_NAME = "harm_judge"


class LLMJudgeBackend:
    """Sends the judge prompt (system) and the answer (user); parses JSON or Llama Guard output."""

    name = "llm"

    def __init__(
        self,
        chat_model: BaseChatModel,
        *,
        catalogue: Catalogue | None = None,
        locale: str = "en",
        max_chars: int = 12_000,
    ) -> None:
        self.chat_model = chat_model
        self.locale = locale
        self.max_chars = max_chars
        self._catalogue = catalogue
        self._prompt: Text | None = None

    @property
    def prompt(self) -> Text | None:
        """The loaded prompt (its ``ref()`` identifies the exact version used)."""
        return self._prompt

    async def load(self) -> None:
        catalogue = self._catalogue or Catalogue()
        self._prompt = catalogue.text(PROMPT_NAME, self.locale)

    async def classify(self, text: str) -> dict[str, float]:
        if self._prompt is None:
            raise RuntimeError("LLMJudgeBackend.load() was not awaited")
        # the answer travels as data in its own message, fenced, so it cannot pose as instructions
        answer = text[: self.max_chars]
        message = await self.chat_model.ainvoke(
            [
                SystemMessage(content=self._prompt.text),
                HumanMessage(content=f"<answer>\n{answer}\n</answer>"),
            ]
        )
        return parse_verdict(_content_text(message.content))


def _content_text(content: Any) -> str:
    """Message content is a string or a list of blocks (``{"type": "text", "text": ...}``)."""
    if isinstance(content, str):
        return content
    parts: list[str] = []
    for block in content or ():
        if isinstance(block, str):
            parts.append(block)
        elif isinstance(block, dict) and isinstance(block.get("text"), str):
            parts.append(block["text"])
    return "".join(parts)
