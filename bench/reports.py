"""Reports benchmark: record write cost, report intake latency, delivery rate to a webhook.

* records: ``RecordWriter.add`` cost per answer (the only work on the answer's hot path), then
  how many records per second the background flush writes (batches of ``record_batch_size``).
* intake: ``POST /aiguard/reports`` over loopback to an app served by uvicorn in its own
  process (report + event + outbox row in one transaction), sequential requests: p50/p95.
* delivery: reports already in the outbox, drained by one ``OutboxWorker`` in this process to a
  signed-webhook receiver in its own process (uvicorn): reports per second.

    python bench/reports.py [--backend sqlite|postgres] [--intake 200] [--deliver 500]

PostgreSQL uses $AIGUARD_TEST_PG_URL (default postgresql://postgres@127.0.0.1:5432/test) in a
throwaway schema.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from aiguard.policy import Policy  # noqa: E402
from aiguard.policy.prompts import Catalogue  # noqa: E402
from aiguard.services.outbox import OutboxWorker  # noqa: E402
from aiguard.services.records import MIGRATIONS as RECORD_MIGRATIONS  # noqa: E402
from aiguard.services.records import RecordWriter  # noqa: E402
from aiguard.services.reports import MIGRATIONS as REPORT_MIGRATIONS  # noqa: E402
from aiguard.services.reports import ReportService  # noqa: E402
from aiguard.services.sinks import build_sinks  # noqa: E402
from aiguard.store import open_database  # noqa: E402
from tests.conftest import PG_URL, free_port  # noqa: E402
from tests.reports.conftest import identity, make_record  # noqa: E402
from tests.reports.harness import app_policy  # noqa: E402

ANSWER = "The Eiffel Tower is in Paris. " * 20  # ~600 characters, a typical answer


def spawn(*args: str) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIGUARD_")}
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.Popen(
        [sys.executable, "-m", "tests.reports.harness", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
    )


def wait_up(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("child process died")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.05)
    raise RuntimeError(f"{url} did not come up")


async def new_db(url: str) -> Any:
    db = open_database(url)
    await db.connect()
    await db.migrate([*RECORD_MIGRATIONS, *REPORT_MIGRATIONS])
    return db


async def bench_records(url: str, policy: Policy, n_add: int, n_flush: int) -> dict[str, float]:
    db = await new_db(url)
    try:
        big = policy.model_copy(
            update={"reports": policy.reports.model_copy(update={"record_queue_max": n_add + 1})}
        )
        writer = RecordWriter(db, big)
        recs = [make_record(answer=ANSWER) for _ in range(n_add)]
        t0 = time.perf_counter()
        for rec in recs:
            writer.add(rec)
        add_ns = (time.perf_counter() - t0) / n_add * 1e9
        writer = RecordWriter(db, big)
        for rec in [make_record(answer=ANSWER) for _ in range(n_flush)]:
            writer.add(rec)
        t0 = time.perf_counter()
        await writer.flush()
        flush_rate = n_flush / (time.perf_counter() - t0)
        return {"add_ns_per_record": round(add_ns), "flush_records_per_s": round(flush_rate)}
    finally:
        await db.close()


def bench_intake(url: str, n: int) -> dict[str, float]:
    port = free_port()
    overrides = json.dumps({"rate_limit": n + 10})
    # no sinks: intake alone (the worker would otherwise compete for the database)
    server = spawn("serve", url, "", str(port), overrides)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_up(base + "/aiguard/reports/x", server)
        who = {"x-test-subject": "bench" + uuid.uuid4().hex[:8]}
        with httpx.Client(base_url=base, timeout=30) as client:
            ids = [client.post("/chat", headers=who).json()["message_id"] for _ in range(n)]
            time.sleep(0.2)  # let the records flush, as they would have long before a report
            lat = []
            for mid in ids:
                t0 = time.perf_counter()
                resp = client.post(
                    "/aiguard/reports",
                    json={"message_id": mid, "category": "inaccurate", "comment": "wrong"},
                    headers=who,
                )
                lat.append((time.perf_counter() - t0) * 1000)
                assert resp.status_code == 201, resp.text
        lat.sort()
        return {
            "intake_p50_ms": round(statistics.median(lat), 2),
            "intake_p95_ms": round(lat[int(len(lat) * 0.95) - 1], 2),
            "intake_reports_per_s_sequential": round(n / (sum(lat) / 1000)),
        }
    finally:
        server.terminate()
        server.wait(10)


async def bench_delivery(url: str, n: int, batch: int) -> dict[str, float]:
    port = free_port()
    receiver = spawn("receive", str(port))
    hook = f"http://127.0.0.1:{port}/hook"
    try:
        wait_up(f"http://127.0.0.1:{port}/", receiver)
        policy = app_policy(
            url,
            hook,
            rate_limit=n + 10,
            outbox_batch=batch,
            webhook_timeout_seconds=10.0,
            lease_seconds=60.0,
        )
        db = await new_db(url)
        try:
            records = RecordWriter(db, policy)
            svc = ReportService(db, policy, Catalogue(), records)
            subject = "d" + uuid.uuid4().hex[:31]
            for _ in range(n):
                rec = make_record(subject=subject, answer=ANSWER)
                records.add(rec)
                await svc.submit(identity(subject), rec.message_id, "inaccurate", "x", "")
            worker = OutboxWorker(db, policy, build_sinks(policy))
            t0 = time.perf_counter()
            while await worker.run_once():
                pass
            elapsed = time.perf_counter() - t0
            await worker.stop()
            assert worker.delivered == n, worker.delivered
            return {f"delivered_per_s_batch{batch}": round(n / elapsed)}
        finally:
            await db.close()
    finally:
        receiver.terminate()
        receiver.wait(10)


def pg_schema_url() -> tuple[str, str]:
    schema = "bench_" + uuid.uuid4().hex[:8]
    sep = "&" if "?" in PG_URL else "?"
    return f"{PG_URL}{sep}options=-csearch_path%3D{schema}", schema


async def pg_exec(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_URL)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument("--intake", type=int, default=200)
    ap.add_argument("--deliver", type=int, default=500)
    ap.add_argument("--records", type=int, default=20_000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        schema = None
        if args.backend == "sqlite":
            url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        else:
            url, schema = pg_schema_url()
            asyncio.run(pg_exec(f'CREATE SCHEMA "{schema}"'))
        try:
            policy = app_policy(url, None)
            results: dict[str, Any] = {"backend": args.backend}
            results.update(asyncio.run(bench_records(url, policy, 100_000, args.records)))
            results.update(bench_intake(url, args.intake))
            for batch in (16, 64):
                results.update(asyncio.run(bench_delivery(url, args.deliver, batch)))
        finally:
            if schema:
                asyncio.run(pg_exec(f'DROP SCHEMA "{schema}" CASCADE'))
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
