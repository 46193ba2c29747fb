"""aiguard: make any LLM chatbot honest with its users.

LangChain: ``from aiguard.integrations.langchain import guard_runnable`` (kept out of this
module so ``import aiguard`` does not import langchain_core).

Public surface; everything not re-exported here may change between releases.
"""

from aiguard.asgi.middleware import AIGuardMiddleware
from aiguard.errors import (
    AIGuardError,
    ChainBrokenError,
    ConfigError,
    MissingExtraError,
    StoreError,
)
from aiguard.policy.loading import load_policy
from aiguard.policy.models import Policy, RouteRule
from aiguard.policy.prompts import Catalogue, Text
from aiguard.proxy import build_proxy
from aiguard.runtime import Runtime
from aiguard.screens.base import (
    Action,
    PipelineResult,
    Screen,
    ScreenContext,
    ScreenResult,
    Span,
    Verdict,
)
from aiguard.screens.pipeline import ScreenPipeline, build_screener
from aiguard.screens.registry import register as register_screen

__all__ = [
    "AIGuardError",
    "AIGuardMiddleware",
    "Action",
    "Catalogue",
    "ChainBrokenError",
    "ConfigError",
    "MissingExtraError",
    "PipelineResult",
    "Policy",
    "RouteRule",
    "Runtime",
    "Screen",
    "ScreenContext",
    "ScreenPipeline",
    "ScreenResult",
    "Span",
    "StoreError",
    "Text",
    "Verdict",
    "build_proxy",
    "build_screener",
    "load_policy",
    "register_screen",
]
__version__ = "0.1.0"
