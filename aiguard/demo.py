"""``aiguard demo``: the example chatbot wrapped by aiguard, with the demo chat page at ``/``.

Everything is local: SQLite under ``var/``, the scripted model (or OpenAI when
``OPENAI_API_KEY`` is set), provider reports appended to ``var/provider-reports.jsonl``.
"""

from __future__ import annotations

import importlib.util
import logging
import secrets
from pathlib import Path
from types import ModuleType
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Mount, Route

from aiguard.asgi.middleware import AIGuardMiddleware
from aiguard.errors import ConfigError
from aiguard.policy.loading import load_policy
from aiguard.policy.models import Policy

log = logging.getLogger("aiguard")


def demo_defaults(admin_token: str, provider_token: str) -> dict[str, Any]:
    return {
        "provider": "aiguard demo",
        "storage": {"url": "sqlite:///var/demo.db"},
        "consent": {"required": ["ai_interaction"], "admin_token": admin_token},
        "reports": {"jsonl_path": "var/provider-reports.jsonl", "provider_token": provider_token},
        "screening": {"screens": ["pii", "harm", "infringement"]},
    }


def _load_example() -> ModuleType:
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / "examples" / "chatbot.py", here / "_examples" / "chatbot.py"):
        if candidate.is_file():
            spec = importlib.util.spec_from_file_location("aiguard_demo_chatbot", candidate)
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            return module
    raise ConfigError("examples/chatbot.py not found (neither in the checkout nor the wheel)")


def build_demo_app(policy: Policy | None = None) -> AIGuardMiddleware:
    from aiguard.asgi.widget_api import demo_html

    bot = _load_example().build_app()
    if policy is None:
        policy = load_policy(**demo_defaults(secrets.token_urlsafe(24), secrets.token_urlsafe(24)))
    page = demo_html(policy.prefix)

    async def index(request: Request) -> Response:
        return HTMLResponse(page)

    app = Starlette(routes=[Route("/", index), Mount("/", app=bot)])
    return AIGuardMiddleware(app, policy=policy)


def run_demo(host: str = "127.0.0.1", port: int = 8000, policy_path: str | None = None) -> None:
    import uvicorn

    # fresh tokens per run: the demo never ships a guessable credential
    admin, provider = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    policy = (
        load_policy(policy_path) if policy_path else load_policy(**demo_defaults(admin, provider))
    )
    app = build_demo_app(policy)
    prefix = policy.prefix
    print(
        f"\n  aiguard demo: http://{host}:{port}/\n"
        f"  storage      : {policy.storage.url}\n"
        f"  consent log  : curl -H 'Authorization: Bearer {admin}' "
        f"http://{host}:{port}{prefix}/admin/consent/export?format=jsonl\n"
        f"  provider API : curl -H 'Authorization: Bearer {provider}' "
        f"http://{host}:{port}{prefix}/provider/reports\n",
        flush=True,
    )
    uvicorn.run(app, host=host, port=port, log_level="info")
