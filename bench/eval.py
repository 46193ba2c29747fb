"""Run every screen evaluation and print one table.

    .venv/bin/python bench/eval.py [--only pii,harm,infringement] [--json]

Convention for ``bench/eval_<screen>.py``: a module-level ``evaluate() -> list[dict]`` whose rows
have ``screen, dataset, metric, value, n`` and optionally ``notes`` (and that returns ``[]``
after printing a reason to stderr when its dataset is absent). A script without ``evaluate()``
is run as a subprocess with ``--json`` (last stdout line: the rows as a JSON list); failing
that, its plain output is printed under its name. One evaluation failing does not stop the
others.
"""

from __future__ import annotations

import argparse
import importlib.util
import inspect
import json
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
EVALS = ["pii", "harm", "infringement"]
COLUMNS = ["screen", "dataset", "metric", "value", "n", "notes"]


def _rows_from_module(path: Path) -> list[dict[str, Any]] | None:
    spec = importlib.util.spec_from_file_location(f"_eval_{path.stem}", path)
    if spec is None or spec.loader is None:
        return None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses and pickling look the module up there
    spec.loader.exec_module(module)
    evaluate = getattr(module, "evaluate", None)
    if not callable(evaluate):
        return None
    required = [
        p
        for p in inspect.signature(evaluate).parameters.values()
        if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    if required:  # an evaluate() of another shape: run the script instead
        return None
    return list(evaluate())


def _rows_from_script(path: Path, name: str) -> tuple[list[dict[str, Any]], str]:
    run = subprocess.run(
        [sys.executable, str(path), "--json"], capture_output=True, text=True, timeout=1800
    )
    lines = run.stdout.strip().splitlines()
    if run.returncode == 0 and lines:
        try:
            rows = json.loads(lines[-1])
            if isinstance(rows, list):
                return rows, ""
        except json.JSONDecodeError:
            pass
    plain = subprocess.run(
        [sys.executable, str(path)], capture_output=True, text=True, timeout=1800
    )
    return [], plain.stdout + plain.stderr


def collect(names: list[str]) -> tuple[list[dict[str, Any]], dict[str, str]]:
    rows: list[dict[str, Any]] = []
    raw: dict[str, str] = {}
    for name in names:
        path = HERE / f"eval_{name}.py"
        started = time.perf_counter()
        if not path.is_file():
            rows.append({"screen": name, "metric": "(no evaluation script)", "notes": str(path)})
            continue
        try:
            got = _rows_from_module(path)
            if got is None:
                got, text = _rows_from_script(path, name)
                if text:
                    raw[name] = text
        except Exception as exc:  # report and carry on with the other evaluations
            traceback.print_exc()
            got = [{"screen": name, "metric": "(evaluation failed)", "notes": repr(exc)}]
        if not got and name not in raw:
            got = [{"screen": name, "metric": "(skipped: dataset absent?)"}]
        for r in got:
            r.setdefault("screen", name)
        rows.extend(got)
        print(f"eval_{name}: {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return rows, raw


def _cell(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4f}".rstrip("0").rstrip(".") if abs(v) < 1000 else f"{v:.0f}"
    return "" if v is None else str(v)


def render(rows: list[dict[str, Any]]) -> str:
    table = [COLUMNS] + [[_cell(r.get(c)) for c in COLUMNS] for r in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(COLUMNS))]
    out = []
    for j, line in enumerate(table):
        out.append("| " + " | ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) + " |")
        if j == 0:
            out.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", default=",".join(EVALS), help="comma-separated screens")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    rows, raw = collect([n.strip() for n in args.only.split(",") if n.strip()])
    if args.json:
        print(json.dumps(rows))
        return
    print(render(rows))
    for name, text in raw.items():
        print(f"\n## eval_{name}.py (plain output)\n{text.rstrip()}")


if __name__ == "__main__":
    main()
