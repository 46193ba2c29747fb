"""Dotted field paths into decoded JSON (``data.reply``, ``choices.0.message.content``)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any


@lru_cache(maxsize=256)
def parse(path: str) -> tuple[str | int, ...]:
    return tuple(int(p) if p.isdigit() else p for p in path.split(".") if p)


def get(obj: Any, path: str) -> Any:
    """The value at ``path`` or ``None`` when any step is missing or of the wrong type."""
    cur = obj
    for step in parse(path):
        if isinstance(step, int):
            if not isinstance(cur, list) or step >= len(cur):
                return None
            cur = cur[step]
        else:
            if not isinstance(cur, dict) or step not in cur:
                return None
            cur = cur[step]
    return cur


def set_(obj: Any, path: str, value: Any) -> bool:
    """Replace the value at an existing ``path``; ``False`` when the path does not exist."""
    steps = parse(path)
    if not steps:
        return False
    parent = get(obj, ".".join(str(s) for s in steps[:-1])) if len(steps) > 1 else obj
    last = steps[-1]
    if isinstance(last, int):
        if isinstance(parent, list) and last < len(parent):
            parent[last] = value
            return True
        return False
    if isinstance(parent, dict) and last in parent:
        parent[last] = value
        return True
    return False
