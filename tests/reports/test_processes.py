"""Crash safety and multi-replica delivery with real processes."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from aiguard.policy.prompts import Catalogue
from aiguard.services.records import RecordWriter
from aiguard.services.reports import MIGRATIONS, ReportService
from aiguard.store import open_database
from tests.conftest import free_port
from tests.reports.conftest import identity, make_record
from tests.reports.harness import Receiver, app_policy, serve_on, wait_for

ROOT = Path(__file__).resolve().parents[2]
HARNESS = [sys.executable, "-m", "tests.reports.harness"]


def spawn(*args: str, capture: bool = True) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env = {k: v for k, v in env.items() if not k.startswith("AIGUARD_")}
    return subprocess.Popen(
        [*HARNESS, *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE if capture else subprocess.DEVNULL,
        text=True,
    )


def wait_http(base: str, proc: subprocess.Popen[str]) -> None:
    def up() -> bool:
        assert proc.poll() is None, "server process died"
        try:
            httpx.get(base + "/aiguard/reports/x", timeout=1)
        except httpx.TransportError:
            return False
        return True

    wait_for(up, timeout=30, what="server process")


def test_sigkill_mid_delivery_then_restart_delivers_once(tmp_path: Path) -> None:
    db_url = f"sqlite:///{tmp_path / 'a.db'}"
    receiver = Receiver(hang=True)  # accepts nothing until released: delivery stays in flight
    with serve_on(receiver.app()) as hook_base:
        hook = hook_base + "/hook"
        port = free_port()
        proc = spawn("serve", db_url, hook, str(port), capture=False)
        try:
            base = f"http://127.0.0.1:{port}"
            wait_http(base, proc)
            who = {"x-test-subject": "a" * 32}
            message_id = httpx.post(base + "/chat", headers=who).json()["message_id"]
            resp = httpx.post(
                base + "/aiguard/reports",
                json={"message_id": message_id, "category": "harmful"},
                headers=who,
            )
            assert resp.status_code == 201
            key = resp.json()["report"]["id"] + ".1"
            wait_for(lambda: receiver.requests, what="the delivery attempt")
            os.kill(proc.pid, signal.SIGKILL)  # no shutdown, no outcome recorded
            proc.wait(10)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
        receiver.hang = False
        receiver.released = True

        worker = spawn("work", db_url, hook)  # a fresh process: waits out the 2 s lease
        out, _ = worker.communicate(timeout=30)
        assert worker.returncode == 0
        assert json.loads(out.strip().splitlines()[-1]) == {"delivered": 1}
    assert receiver.accepted == [key]
    assert set(receiver.requests) == {key}


@pytest.mark.postgres
def test_two_worker_processes_on_postgres_deliver_each_report_once(pg_url: str) -> None:
    n = 30
    receiver = Receiver(delay=0.01)
    with serve_on(receiver.app()) as hook_base:
        hook = hook_base + "/hook"
        policy = app_policy(pg_url, hook, rate_limit=1000)

        async def submit() -> list[str]:
            db = open_database(pg_url)
            await db.connect()
            try:
                records = RecordWriter(db, policy)
                await records.start()
                svc = ReportService(db, policy, Catalogue(), records)
                await db.migrate(MIGRATIONS)
                keys = []
                for _ in range(n):
                    rec = make_record()
                    records.add(rec)
                    report = await svc.submit(identity(), rec.message_id, "inaccurate", "", "")
                    keys.append(f"{report.id}.1")
                await records.stop()
                return keys
            finally:
                await db.close()

        keys = asyncio.run(submit())
        workers = [spawn("work", pg_url, hook) for _ in range(2)]
        delivered = []
        for w in workers:
            out, _ = w.communicate(timeout=45)
            assert w.returncode == 0
            delivered.append(json.loads(out.strip().splitlines()[-1])["delivered"])
    assert sorted(receiver.accepted) == sorted(keys)  # every report, none twice
    assert len(receiver.requests) == n
    assert sum(delivered) == n, delivered
