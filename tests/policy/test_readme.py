from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_readme_option_tables_match_the_policy_models() -> None:
    spec = importlib.util.spec_from_file_location(
        "policy_tables", ROOT / "scripts/policy_tables.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = readme.split(module.START, 1)[1].split(module.END, 1)[0]
    assert block.strip() == module.tables().strip(), "run: python scripts/policy_tables.py --write"


def test_readme_opens_with_the_two_commands() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    first_block = readme.split("```sh", 1)[1].split("```", 1)[0].strip().splitlines()
    assert [line.split("#")[0].strip() for line in first_block] == ["make demo", "make test"]
    assert "make test" in (ROOT / ".ci/run").read_text()
