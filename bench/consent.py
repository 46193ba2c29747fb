"""Consent ledger benchmark: gate latency, grant throughput, export of a large ledger.

    python bench/consent.py                      # quick: 100k-record export, SQLite + PostgreSQL
    python bench/consent.py --records 1000000    # the number in docs/consent.md
    python bench/consent.py --no-pg              # SQLite only

PostgreSQL: ``AIGUARD_TEST_PG_URL`` (default postgresql://postgres@127.0.0.1:5432/test); the
bench works in a throw-away schema. Large ledgers are seeded in bulk with the real chain
functions (so ``verify`` accepts them); the export and verify then run in a fresh child process
whose peak RSS is reported.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import secrets
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from aiguard.asgi.identity import RequestIdentity  # noqa: E402
from aiguard.policy import Policy, load_policy  # noqa: E402
from aiguard.policy.prompts import Catalogue  # noqa: E402
from aiguard.services import consent_chain as chain  # noqa: E402
from aiguard.services.consent import MIGRATIONS, ConsentService, utc_now  # noqa: E402
from aiguard.services.consent_export import RECORD_FIELDS  # noqa: E402
from aiguard.store import open_database  # noqa: E402

PG_URL = os.environ.get("AIGUARD_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
REQUIRED = ["ai_interaction", "provider_processing"]


def policy(ttl: float = 60.0) -> Policy:
    return load_policy(
        environ={},
        consent={"required": REQUIRED, "cache_ttl_seconds": ttl},
        identity={"secret": "b" * 32},
    )


def who(subject: str) -> RequestIdentity:
    return RequestIdentity(subject, "c" * 32, "en", "203.0.113.9", "Mozilla/5.0 (bench)")


def peak_rss_mib() -> float:
    """This process's own peak RSS. Not ``ru_maxrss``: Linux carries that over ``exec`` from
    the parent, so a child would report the (larger) bench parent's peak."""
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


async def bench_gate(url: str) -> dict[str, float]:
    db = open_database(url)
    await db.migrate(MIGRATIONS)
    cat = Catalogue()
    cached, uncached = ConsentService(db, policy(60), cat), ConsentService(db, policy(0), cat)
    await cached.record(who("a" * 32), REQUIRED, "granted")
    await cached.check("a" * 32)
    times: list[float] = []
    for _ in range(20_000):
        t = time.perf_counter_ns()
        await cached.check("a" * 32)
        times.append((time.perf_counter_ns() - t) / 1000)
    slow: list[float] = []
    for _ in range(1000):
        t = time.perf_counter_ns()
        await uncached.check("a" * 32)
        slow.append((time.perf_counter_ns() - t) / 1000)
    await db.close()
    return {
        "cached_p50_us": statistics.median(times),
        "cached_p99_us": pct(times, 0.99),
        "uncached_p50_us": statistics.median(slow),
        "uncached_p99_us": pct(slow, 0.99),
    }


async def bench_grants(url: str, n: int) -> float:
    db = open_database(url)
    await db.migrate(MIGRATIONS)
    service = ConsentService(db, policy(), Catalogue())
    t = time.perf_counter()
    for i in range(n):
        await service.record(who(f"{i:032x}"), ["ai_interaction"], "granted")
    rate = n / (time.perf_counter() - t)
    await db.close()
    return rate


async def _worker(url: str, n: int, tag: str) -> None:
    db = open_database(url, pool_size=2)
    await db.migrate(MIGRATIONS)
    service = ConsentService(db, policy(), Catalogue())
    await service.check("0" * 32)  # connect before the clock starts
    start = time.time()
    for i in range(n):
        await service.record(who(f"{tag}{i:08x}".ljust(32, "0")), ["ai_interaction"], "granted")
    print(json.dumps([start, time.time()]), flush=True)
    await db.close()


def bench_grants_multi(url: str, procs: int, n: int) -> float:
    """Aggregate rate from the first grant of any worker to the last (startup excluded)."""
    children = [
        subprocess.Popen(
            [sys.executable, __file__, "--worker", url, str(n), f"w{i}"],
            stdout=subprocess.PIPE,
            text=True,
        )
        for i in range(procs)
    ]
    spans: list[tuple[float, float]] = []
    for c in children:
        out, _ = c.communicate()
        if c.returncode != 0:
            raise SystemExit("worker failed")
        start, end = json.loads(out.strip().splitlines()[-1])
        spans.append((float(start), float(end)))
    return procs * n / (max(e for _, e in spans) - min(s for s, _ in spans))


def _rows(count: int, subjects: int) -> Any:
    """A valid chain of ``count`` grants over ``subjects`` subjects (keys yielded first)."""
    keys = {f"{i:032x}": secrets.token_bytes(32) for i in range(subjects)}
    yield [(s, k.hex(), utc_now()) for s, k in keys.items()]
    prev = chain.GENESIS
    names = list(keys)
    cat = Catalogue()
    notice = cat.text("consent_notice", "en")
    batch: list[tuple[Any, ...]] = []
    now = utc_now()
    for seq in range(1, count + 1):
        subject = names[seq % subjects]
        record_id = "cons_" + uuid.uuid4().hex
        row: dict[str, Any] = {
            "seq": seq,
            "record_id": record_id,
            "receipt_id": "rcpt_" + record_id[5:],
            "subject_id": subject,
            "purpose": REQUIRED[seq % 2],
            "action": "granted",
            "notice_id": notice.id,
            "notice_version": notice.version,
            "notice_locale": notice.locale,
            "notice_sha256": notice.sha256,
            "jurisdiction": "EU",
            "method": "bench",
            "created_at": now,
            "ip_hash": "1" * 64,
            "ua_hash": "2" * 64,
            "prev_hash": prev,
            "erased_at": None,
        }
        row["commitment"] = chain.commitment(keys[subject], record_id, subject, "1" * 64, "2" * 64)
        row["hash"] = prev = chain.record_hash(prev, row)
        batch.append(tuple(row[f] for f in RECORD_FIELDS))
        if len(batch) == 20_000:
            yield batch
            batch = []
    if batch:
        yield batch
    yield ("head", count, prev)


async def seed(url: str, count: int) -> float:
    db = open_database(url)
    await db.migrate(MIGRATIONS)
    await db.close()
    t = time.perf_counter()
    gen = _rows(count, max(1, count // 10))
    key_rows = next(gen)
    cols = ", ".join(RECORD_FIELDS)
    if url.startswith("sqlite"):
        conn = sqlite3.connect(url[len("sqlite:///") :], isolation_level=None)
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO consent_subject_keys VALUES (?, ?, ?)", key_rows)
        marks = ", ".join("?" for _ in RECORD_FIELDS)
        for batch in gen:
            if batch[0] == "head":
                conn.execute("UPDATE consent_chain_head SET seq = ?, hash = ?", batch[1:])
                break
            conn.executemany(f"INSERT INTO consent_records ({cols}) VALUES ({marks})", batch)
        conn.execute("COMMIT")
        conn.close()
    else:
        import asyncpg

        pg = await asyncpg.connect(url)
        async with pg.transaction():
            await pg.copy_records_to_table("consent_subject_keys", records=key_rows)
            for batch in gen:
                if batch[0] == "head":
                    await pg.execute(
                        "UPDATE consent_chain_head SET seq = $1, hash = $2", batch[1], batch[2]
                    )
                    break
                await pg.copy_records_to_table(
                    "consent_records", records=batch, columns=list(RECORD_FIELDS)
                )
        await pg.close()
    return time.perf_counter() - t


async def _export_child(url: str, what: str) -> None:
    db = open_database(url)
    service = ConsentService(db, policy(), Catalogue())
    t = time.perf_counter()
    n = 0
    if what == "verify":
        report = await service.verify()
        assert report.ok, report
        n = report.records
    else:
        with open(os.devnull, "w", encoding="utf-8") as sink:
            async for chunk in service.export(what):  # type: ignore[arg-type]
                sink.write(chunk)
                n += 1
    seconds = time.perf_counter() - t
    await db.close()
    print(
        json.dumps({"what": what, "seconds": seconds, "chunks": n, "peak_rss_mib": peak_rss_mib()})
    )


def export_child(url: str, what: str) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--export-child", url, what],
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def baseline_rss() -> float:
    """RSS of a child that imports the same modules and exports nothing (for comparison)."""
    out = subprocess.run(
        [sys.executable, __file__, "--baseline"], check=True, capture_output=True, text=True
    )
    return float(out.stdout.strip())


async def pg_schema(create: bool, schema: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_URL)
    sql = f'CREATE SCHEMA "{schema}"' if create else f'DROP SCHEMA "{schema}" CASCADE'
    await conn.execute(sql)
    await conn.close()


def run_backend(name: str, url: str, args: argparse.Namespace) -> dict[str, Any]:
    result: dict[str, Any] = {"backend": name}
    result["gate"] = asyncio.run(bench_gate(url))
    result["grants_per_s_1proc"] = asyncio.run(bench_grants(url, args.grants))
    result["grants_per_s_4proc"] = bench_grants_multi(url, 4, args.grants // 2)
    print(json.dumps(result), flush=True)
    big = url if name == "postgres" else url.replace("ledger.db", "big.db")
    if name == "postgres":
        asyncio.run(pg_schema(False, args.schema))
        asyncio.run(pg_schema(True, args.schema))
    result["records"] = args.records
    result["seed_seconds"] = asyncio.run(seed(big, args.records))
    for what in ("jsonl", "csv", "receipt", "verify"):
        result[what] = export_child(big, what)
        print(json.dumps({name: {what: result[what]}}), flush=True)
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--records", type=int, default=100_000, help="ledger size for the export")
    ap.add_argument("--grants", type=int, default=400, help="grants per throughput run")
    ap.add_argument("--no-pg", action="store_true")
    ap.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    ap.add_argument("--export-child", nargs=2, help=argparse.SUPPRESS)
    ap.add_argument("--baseline", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        asyncio.run(_worker(args.worker[0], int(args.worker[1]), args.worker[2]))
        return
    if args.export_child:
        asyncio.run(_export_child(*args.export_child))
        return
    if args.baseline:
        print(peak_rss_mib())
        return
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the finally: drop the schema
    results: list[dict[str, Any]] = [{"baseline_rss_mib": baseline_rss()}]
    with tempfile.TemporaryDirectory() as tmp:
        results.append(run_backend("sqlite", f"sqlite:///{tmp}/ledger.db", args))
    if not args.no_pg:
        args.schema = "bench_" + uuid.uuid4().hex[:8]
        asyncio.run(pg_schema(True, args.schema))
        try:
            url = f"{PG_URL}?options=-csearch_path%3D{args.schema}"
            results.append(run_backend("postgres", url, args))
        finally:
            asyncio.run(pg_schema(False, args.schema))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
