"""Harmful-content screen: one ``HarmScreen``, three interchangeable backends.

- ``local`` (default): offline hashed n-gram logistic regression + multilingual rules.
- ``openai``: the OpenAI Moderation endpoint.
- ``llm``: any LangChain chat model as a judge (JSON or Llama Guard replies).
"""

from aiguard.screens.harm._backend import Finding, HarmBackend, SpanBackend
from aiguard.screens.harm._categories import CATEGORIES, DEFAULT_THRESHOLDS, LLAMA_GUARD
from aiguard.screens.harm.local import LocalBackend
from aiguard.screens.harm.screen import HarmScreen, build_harm_screen

__all__ = [
    "CATEGORIES",
    "DEFAULT_THRESHOLDS",
    "LLAMA_GUARD",
    "Finding",
    "HarmBackend",
    "HarmScreen",
    "LocalBackend",
    "SpanBackend",
    "build_harm_screen",
]
