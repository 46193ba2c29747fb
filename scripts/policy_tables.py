"""Print (or check) README's option tables, generated from the policy models' docstrings.

python scripts/policy_tables.py          # print the tables
python scripts/policy_tables.py --write  # rewrite the block in README.md
"""

from __future__ import annotations

import sys
import types
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from aiguard.policy.models import Policy  # noqa: E402

START, END = "<!-- options:start -->", "<!-- options:end -->"


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is typing.Literal:
        return " \\| ".join(repr(a).replace("'", '"') for a in typing.get_args(tp))
    if origin in (typing.Union, types.UnionType):
        return " \\| ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is not None:
        args = ", ".join(_type_name(a) for a in typing.get_args(tp))
        return f"{getattr(origin, '__name__', str(origin))}[{args}]"
    if tp is type(None):
        return "None"
    return getattr(tp, "__name__", str(tp))


def _default(field: FieldInfo) -> str:
    if field.default_factory is not None:
        value = field.default_factory()  # type: ignore[call-arg]
    elif field.default is PydanticUndefined:
        return "required"
    else:
        value = field.default
    if isinstance(value, BaseModel):
        return "(section)"
    if isinstance(value, dict) and any(isinstance(v, BaseModel) for v in value.values()):
        return "one entry per " + ", ".join(f"`{k}`" for k in value)
    if isinstance(value, Path):
        value = str(value)
    if isinstance(value, list) and value and isinstance(value[0], BaseModel):
        value = [v.model_dump(exclude_defaults=True) for v in value]
    text = repr(value).replace("'", '"').replace("|", "\\|")
    if value is None:
        text = "unset"
    return f"`{text}`"


def _is_section(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def tables() -> str:
    out: list[str] = []

    def emit(model: type[BaseModel], prefix: str, title: str) -> None:
        rows = []
        nested = []
        for name, field in model.model_fields.items():
            if _is_section(field.annotation):
                nested.append((name, field.annotation))
                continue
            desc = " ".join((field.description or "").split()).replace("|", "\\|")
            kind = _type_name(field.annotation)
            rows.append(f"| `{prefix}{name}` | {kind} | {_default(field)} | {desc} |")
        out.append(f"#### {title}\n")
        out.append("| name | type | default | meaning |\n|---|---|---|---|")
        out.extend(rows)
        out.append("")
        for name, sub in nested:
            doc = " ".join((sub.__doc__ or "").split())
            emit(sub, f"{prefix}{name}.", f"`[{prefix}{name}]` {doc}".strip())

    emit(Policy, "", "Top level")
    return "\n".join(out).rstrip() + "\n"


def main() -> int:
    text = tables()
    if "--write" in sys.argv:
        readme = ROOT / "README.md"
        content = readme.read_text(encoding="utf-8")
        head, _, rest = content.partition(START)
        _, _, tail = rest.partition(END)
        readme.write_text(f"{head}{START}\n{text}{END}{tail}", encoding="utf-8")
    else:
        print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
