"""Harmful-content screen: one ``HarmScreen``, three interchangeable backends.

- ``local`` (default): offline hashed n-gram logistic regression + multilingual rules.
- ``openai``: the OpenAI Moderation endpoint.
- ``llm``: any LangChain chat model as a judge (JSON or Llama Guard replies).
"""

from typing import TYPE_CHECKING, Any

from aiguard.screens.harm._backend import Finding, HarmBackend, SpanBackend
from aiguard.screens.harm._categories import CATEGORIES, DEFAULT_THRESHOLDS, LLAMA_GUARD
from aiguard.screens.harm.local import LocalBackend
from aiguard.screens.harm.screen import HarmScreen, build_harm_screen

if TYPE_CHECKING:
    from aiguard.screens.harm.llm import LLMJudgeBackend
    from aiguard.screens.harm.openai_moderation import OpenAIModerationBackend


def __getattr__(name: str) -> Any:
    # the remote backends import openai / langchain only when someone asks for them
    if name == "OpenAIModerationBackend":
        from aiguard.screens.harm.openai_moderation import OpenAIModerationBackend

        return OpenAIModerationBackend
    if name == "LLMJudgeBackend":
        from aiguard.screens.harm.llm import LLMJudgeBackend

        return LLMJudgeBackend
    raise AttributeError(name)


__all__ = [
    "CATEGORIES",
    "DEFAULT_THRESHOLDS",
    "LLAMA_GUARD",
    "Finding",
    "HarmBackend",
    "HarmScreen",
    "LLMJudgeBackend",
    "LocalBackend",
    "OpenAIModerationBackend",
    "SpanBackend",
    "build_harm_screen",
]
