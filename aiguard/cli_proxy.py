"""``aiguard proxy``: serve the OpenAI-compatible guarding proxy in front of an upstream."""

from __future__ import annotations

import argparse
import logging
import os
from typing import Any

from aiguard.errors import ConfigError

log = logging.getLogger("aiguard.proxy")


def register(sub: Any) -> None:
    """Add the ``proxy`` command to the ``aiguard`` sub-command parsers."""
    cmd: argparse.ArgumentParser = sub.add_parser(
        "proxy",
        help="serve an OpenAI-compatible guarding proxy in front of an upstream",
        description=(
            "Forward POST /v1/chat/completions and GET /v1/models to an OpenAI-compatible "
            "upstream, with disclosure, consent gate, screening and reports. Point the "
            "chatbot's OpenAI base URL at http://HOST:PORT/v1."
        ),
    )
    cmd.add_argument(
        "--upstream",
        required=True,
        metavar="URL",
        help="upstream OpenAI base URL, e.g. https://api.openai.com/v1",
    )
    cmd.add_argument("--host", default="127.0.0.1", help="bind address (default: 127.0.0.1)")
    cmd.add_argument("--port", type=int, default=8080, help="bind port (default: 8080)")
    cmd.add_argument(
        "--upstream-key-env",
        metavar="NAME",
        help="environment variable holding the upstream API key; it replaces the caller's "
        "Authorization header (default: pass the caller's header through)",
    )
    cmd.add_argument(
        "--timeout",
        type=float,
        default=60.0,
        help="seconds to connect and between two upstream reads (default: 60)",
    )
    cmd.set_defaults(func=handler)


def upstream_key(name: str | None, environ: Any = None) -> str | None:
    """The key named by ``--upstream-key-env`` (the key itself never goes on a command line)."""
    if not name:
        return None
    value = (os.environ if environ is None else environ).get(name, "")
    if not value:
        raise ConfigError(f"--upstream-key-env: environment variable {name} is unset or empty")
    return str(value)


def handler(args: argparse.Namespace) -> int:
    import uvicorn

    from aiguard.proxy import build_proxy

    app = build_proxy(
        args.upstream,
        policy=args.policy,
        api_key=upstream_key(args.upstream_key_env),
        timeout=args.timeout,
    )
    log.info("aiguard proxy: http://%s:%d/v1 -> %s", args.host, args.port, args.upstream)
    uvicorn.run(app, host=args.host, port=args.port, lifespan="on", ws="none")
    return 0
