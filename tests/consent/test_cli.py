"""``aiguard db upgrade``, ``consent export|verify``, ``subject export|erase`` via ``main``."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import anyio
import pytest

from aiguard.cli import main
from aiguard.policy.prompts import Catalogue
from aiguard.services.consent import ConsentService
from aiguard.store import open_database
from tests.consent.conftest import REQUIRED, identity, make_policy


@pytest.fixture
def policy_file(tmp_path: Path, db_url: str) -> Path:
    path = tmp_path / "policy.toml"
    path.write_text(
        f'[storage]\nurl = "{db_url}"\n\n[identity]\nsecret = "{"s" * 32}"\n\n'
        f"[consent]\nrequired = {json.dumps(REQUIRED)}\n",
        encoding="utf-8",
    )
    return path


def _seed(db_url: str) -> None:
    async def seed() -> None:
        db = open_database(db_url)
        service = ConsentService(db, make_policy(), Catalogue())
        await service.record(identity("a" * 32), REQUIRED, "granted", "widget")
        await service.record(identity("b" * 32), ["ai_interaction"], "refused")
        await db.close()

    anyio.run(seed)


def _tamper(db_url: str, sql: str) -> None:
    async def run() -> None:
        db = open_database(db_url)
        async with db.transaction() as tx:
            await tx.execute(sql)
        await db.close()

    anyio.run(run)


def test_upgrade_export_verify_erase(
    policy_file: Path, db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    p = ["--policy", str(policy_file)]
    assert main([*p, "db", "upgrade"]) == 0
    assert "consent v1" in capsys.readouterr().out
    assert main([*p, "db", "upgrade"]) == 0
    assert "up to date" in capsys.readouterr().out
    _seed(db_url)

    out = tmp_path / "export.csv"
    assert main([*p, "consent", "export", "--format", "csv", "--output", str(out)]) == 0
    with out.open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [r["action"] for r in rows] == ["granted", "granted", "refused"]
    assert main([*p, "consent", "export", "--format", "receipt", "--subject", "a" * 32]) == 0
    [receipt] = capsys.readouterr().out.splitlines()
    assert json.loads(receipt)["piiPrincipalId"] == "a" * 32
    assert main([*p, "consent", "export", "--since", "not a date"]) == 2
    capsys.readouterr()

    assert main([*p, "consent", "verify"]) == 0
    assert json.loads(capsys.readouterr().out)["ok"] is True

    assert main([*p, "subject", "export", "a" * 32]) == 0
    data = json.loads(capsys.readouterr().out)
    assert len(data["consent"]["records"]) == 2
    assert main([*p, "subject", "erase", "a" * 32]) == 0
    assert json.loads(capsys.readouterr().out)["erased"]["consent"] == 2
    assert main([*p, "subject", "export", "a" * 32]) == 0
    assert json.loads(capsys.readouterr().out)["consent"]["records"] == []
    assert main([*p, "consent", "verify"]) == 0
    capsys.readouterr()

    _tamper(db_url, "UPDATE consent_records SET purpose = 'transcript_retention' WHERE seq = 3")
    assert main([*p, "consent", "verify"]) == 1
    captured = capsys.readouterr()
    assert json.loads(captured.out)["broken_seq"] == 3
    assert "BROKEN at record cons_" in captured.err and "(seq 3)" in captured.err
