"""Middleware overhead: bare app vs guarded app on uvicorn over loopback, in one run.

Each server runs in its own process (one uvicorn worker); the load generator is a small raw
HTTP/1.1 keep-alive client in this process, so the client's own cost is the same for every
variant. Variants are interleaved over several rounds and the median round is reported.

    python bench/overhead.py [--seconds 3] [--rounds 3] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from tests.conftest import free_port  # noqa: E402

SUBJECT = "bench-user"


def request_bytes(stream: bool, port: int) -> bytes:
    body = json.dumps(
        {"model": "bench", "messages": [{"role": "user", "content": "hi"}], "stream": stream}
    ).encode()
    head = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/json\r\nX-AIGuard-Subject: {SUBJECT}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    return head + body


async def read_response(reader: asyncio.StreamReader) -> tuple[int, float | None]:
    """Read one response; return (status, monotonic time of the first body byte)."""
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    lower = head.lower()
    first: float | None = None
    if b"content-length:" in lower:
        n = int(lower.split(b"content-length:")[1].split(b"\r\n")[0])
        if n:
            await reader.readexactly(1)
            first = time.monotonic()
            await reader.readexactly(n - 1)
        return status, first
    while True:  # chunked
        size_line = await reader.readuntil(b"\r\n")
        size = int(size_line.strip().split(b";")[0], 16)
        if size == 0:
            await reader.readuntil(b"\r\n")
            return status, first
        data = await reader.readexactly(size + 2)
        if first is None and data:
            first = time.monotonic()


@dataclass
class Result:
    latencies: list[float] = field(default_factory=list)
    ttfb: list[float] = field(default_factory=list)
    errors: int = 0
    elapsed: float = 0.0

    @property
    def rps(self) -> float:
        return len(self.latencies) / self.elapsed if self.elapsed else 0.0

    def pct(self, values: list[float], p: float) -> float:
        if not values:
            return float("nan")
        s = sorted(values)
        return s[min(len(s) - 1, int(p * len(s)))] * 1000


async def load(port: int, stream: bool, seconds: float, concurrency: int) -> Result:
    res = Result()
    payload = request_bytes(stream, port)
    stop_at = time.monotonic() + seconds

    async def worker() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while time.monotonic() < stop_at:
                t0 = time.monotonic()
                writer.write(payload)
                status, first = await read_response(reader)
                t1 = time.monotonic()
                if status != 200:
                    res.errors += 1
                    continue
                res.latencies.append(t1 - t0)
                if first is not None:
                    res.ttfb.append(first - t0)
        finally:
            writer.close()

    t = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    res.elapsed = time.monotonic() - t
    return res


async def grant_consent(port: int) -> None:
    body = b'{"action": "granted", "purposes": ["ai_interaction"]}'
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        (
            f"POST /aiguard/consent HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"X-AIGuard-Subject: {SUBJECT}\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode()
        + body
    )
    status, _ = await read_response(reader)
    writer.close()
    if status >= 300:
        raise SystemExit(f"consent grant failed: HTTP {status}")


def start(mode: str) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(HERE / "_app.py"), mode, str(port)])
    deadline = time.monotonic() + 60
    import socket

    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return proc, port
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"{mode} server did not start")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--modes", default="bare,disclosure,records,full")
    args = ap.parse_args()
    modes = args.modes.split(",")
    servers = {m: start(m) for m in modes}
    try:
        if "full" in servers:
            asyncio.run(grant_consent(servers["full"][1]))
        for _, port in servers.values():  # warm up (lazy start, caches, screen loading)
            asyncio.run(load(port, False, 0.5, 2))
            asyncio.run(load(port, True, 0.5, 2))
        rows: dict[tuple[str, bool], list[Result]] = {}
        for _ in range(args.rounds):
            for stream in (False, True):
                for mode in modes:
                    r = asyncio.run(load(servers[mode][1], stream, args.seconds, args.concurrency))
                    rows.setdefault((mode, stream), []).append(r)
    finally:
        for proc, _ in servers.values():
            proc.terminate()
            proc.wait(10)

    def median(mode: str, stream: bool) -> Result:
        results = sorted(rows[(mode, stream)], key=lambda r: r.rps)
        return results[len(results) // 2]

    print(
        f"\nuvicorn, 1 worker, loopback, {args.concurrency} connections, "
        f"{args.seconds:.0f}s x {args.rounds} rounds (median round)\n"
    )
    print("| answer | app | req/s | ratio vs bare | p50 ms | p99 ms | TTFB p50 ms | errors |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for stream in (False, True):
        kind = "SSE, 200 chunks" if stream else "JSON, 1 KB"
        bare = median("bare", stream) if "bare" in modes else None
        for mode in modes:
            r = median(mode, stream)
            ratio = r.rps / bare.rps if bare and bare.rps else float("nan")
            print(
                f"| {kind} | {mode} | {r.rps:,.0f} | {ratio:.2f} | {r.pct(r.latencies, 0.5):.2f} "
                f"| {r.pct(r.latencies, 0.99):.2f} | {r.pct(r.ttfb, 0.5):.2f} | {r.errors} |"
            )
    print("\nadded p50 latency = guarded p50 - bare p50 (same table).")


if __name__ == "__main__":
    main()
