"""README's quickstart runs as written (with its TOML next to it)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from starlette.testclient import TestClient

ROOT = Path(__file__).resolve().parents[1]


def test_quickstart(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Quickstart", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    toml = re.search(r"```toml\n(.*?)```", section, re.S)
    assert code and toml
    (tmp_path / "aiguard.toml").write_text(
        toml.group(1).replace("var/aiguard.db", str(tmp_path / "a.db")), encoding="utf-8"
    )
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {}
    exec(compile(code.group(1), "README quickstart", "exec"), namespace)
    with TestClient(namespace["app"]) as client:  # type: ignore[arg-type]
        blocked = client.post("/chat", json={"message": "hi"})
        assert blocked.status_code == 428  # the TOML requires consent
        granted = client.post(
            "/aiguard/consent", json={"action": "granted", "purposes": ["ai_interaction"]}
        )
        assert granted.status_code == 201, granted.text
        answer = client.post("/chat", json={"message": "hi"})
        assert answer.status_code == 200
        assert answer.json()["answer"].startswith("You are chatting with an AI")
        assert answer.json()["answer"].endswith("You asked: hi")
