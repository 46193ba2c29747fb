"""Build a ``Policy`` from a TOML file, ``AIGUARD_*`` environment variables and overrides.

Precedence (last wins): defaults < TOML file < environment < keyword overrides. Nested keys in the
environment use ``__``: ``AIGUARD_DISCLOSURE__MODE=every``. Values are parsed as JSON when they
parse (lists, numbers, booleans), else taken as strings.
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from aiguard.errors import ConfigError
from aiguard.policy.models import Policy

ENV_PREFIX = "AIGUARD_"
_NOT_POLICY = {"AIGUARD_POLICY", "AIGUARD_TEST_PG_URL"}


def _deep_merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _env_layer(environ: Mapping[str, str]) -> dict[str, Any]:
    layer: dict[str, Any] = {}
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX) or name in _NOT_POLICY:
            continue
        path = [p.lower() for p in name[len(ENV_PREFIX) :].split("__") if p]
        if not path:
            continue
        try:
            value: Any = json.loads(raw)
        except ValueError:
            value = raw
        node = layer
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = value
    return layer


def _explain(err: ValidationError, source: str) -> ConfigError:
    first = err.errors()[0]
    key = ".".join(str(p) for p in first["loc"]) or "<root>"
    more = f" (and {err.error_count() - 1} more)" if err.error_count() > 1 else ""
    return ConfigError(f"invalid policy key '{key}' from {source}: {first['msg']}{more}")


def load_policy(
    path: str | Path | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    **overrides: Any,
) -> Policy:
    """Load and validate the policy. Raises ``ConfigError`` naming the first bad key."""
    data: dict[str, Any] = {}
    sources = ["defaults"]
    env = os.environ if environ is None else environ
    if path is None and env.get("AIGUARD_POLICY"):
        path = env["AIGUARD_POLICY"]
    if path is not None:
        p = Path(path)
        try:
            data = tomllib.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"policy file not found: {p}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"policy file {p} is not valid TOML: {exc}") from None
        sources.append(str(p))
    env_layer = _env_layer(env)
    if env_layer:
        data = _deep_merge(data, env_layer)
        sources.append("environment")
    if overrides:
        data = _deep_merge(data, overrides)
        sources.append("arguments")
    try:
        return Policy.model_validate(data)
    except ValidationError as exc:
        raise _explain(exc, " + ".join(sources)) from None
