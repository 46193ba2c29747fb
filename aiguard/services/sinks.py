"""Where report events go: a ``ReportSink`` protocol, a signed webhook and a JSON-lines file.

A sink gets the exact bytes of one event (stored when the report was written) and its idempotency
key, and either returns (delivered) or raises ``DeliveryError`` (retried later by the outbox
worker). Delivery is at-least-once per sink: the worker's lease makes duplicates rare (only when a
worker dies after the receiver accepted but before the database recorded it); receivers drop
them by ``Idempotency-Key``.

Webhook signature (Stripe-style): ``AIGuard-Signature: t=<unix seconds>,v1=<hex>`` where
``hex = HMAC-SHA256(secret, f"{t}.{body}")``. Receivers recompute it over the raw body and reject
stale timestamps (see docs/reports.md).
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import hmac
import json
import os
import time
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Protocol, runtime_checkable

import anyio
import httpx

from aiguard.errors import AIGuardError
from aiguard.policy.models import Policy

SIGNATURE_HEADER = "AIGuard-Signature"


class DeliveryError(AIGuardError, RuntimeError):
    """A sink could not deliver; the worker retries with backoff (``retry_after`` is a hint)."""

    code = "delivery_failed"

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@runtime_checkable
class ReportSink(Protocol):
    """A destination for report events. ``name`` is stored on outbox rows: keep it stable."""

    name: str

    async def deliver(self, key: str, body: bytes) -> None:
        """Deliver one event (UTF-8 JSON ``body``) or raise ``DeliveryError``."""
        ...

    async def aclose(self) -> None: ...


def sign(secret: bytes, body: bytes, timestamp: int) -> str:
    """The ``AIGuard-Signature`` header value for ``body`` at ``timestamp``."""
    mac = hmac.new(secret, str(timestamp).encode("ascii") + b"." + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify(secret: bytes, body: bytes, header: str, *, tolerance: float = 300.0) -> bool:
    """Check a signature header (what a receiver does); ``tolerance`` bounds replay age."""
    fields: dict[str, list[str]] = {}
    for part in header.split(","):
        k, _, v = part.strip().partition("=")
        fields.setdefault(k, []).append(v)
    try:
        ts = int(fields["t"][0])
    except (KeyError, ValueError):
        return False
    if abs(time.time() - ts) > tolerance:
        return False
    expected = sign(secret, body, ts).partition(",v1=")[2]
    return any(hmac.compare_digest(expected, v) for v in fields.get("v1", []))


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


class WebhookSink:
    """POST each event as JSON to ``url``, signed, with ``Idempotency-Key``. 2xx = delivered."""

    name = "webhook"

    def __init__(
        self, url: str, secret: str | bytes, timeout: float = 10.0, *, max_connections: int = 16
    ) -> None:
        self.url = url
        self._secret = secret.encode("utf-8") if isinstance(secret, str) else secret
        self._timeout = timeout
        # keep as many connections alive as the worker sends at once, so rounds reuse them
        self._limits = httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        )
        self._client: httpx.AsyncClient | None = None

    def _http(self) -> httpx.AsyncClient:
        # created lazily so the client binds to the loop that delivers
        if self._client is None:
            self._client = httpx.AsyncClient(
                timeout=self._timeout,
                limits=self._limits,
                follow_redirects=False,
                headers={"User-Agent": "aiguard-webhook/1"},
                trust_env=False,  # never route report payloads through an ambient proxy
            )
        return self._client

    async def deliver(self, key: str, body: bytes) -> None:
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": key,
            SIGNATURE_HEADER: sign(self._secret, body, int(time.time())),
        }
        try:
            resp = await self._http().post(self.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise DeliveryError(f"{type(exc).__name__}: {exc}".rstrip(": ")) from exc
        if not 200 <= resp.status_code < 300:
            raise DeliveryError(
                f"HTTP {resp.status_code} from webhook",
                retry_after=_retry_after(resp.headers.get("retry-after")),
            )

    async def aclose(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()


class JsonlSink:
    """Append each event as one line to ``path``, fsynced before it counts as delivered.

    Each line is ``{"idempotency_key": ..., "event": <the event>}``. Appends are serialised with an
    advisory lock so several workers (processes) can share the file.
    """

    name = "jsonl"

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = asyncio.Lock()

    def _append(self, line: bytes) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            view = memoryview(line)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)  # closing releases the flock

    async def deliver(self, key: str, body: bytes) -> None:
        line = b'{"idempotency_key":' + _json_str(key) + b',"event":' + body + b"}\n"
        async with self._lock:
            try:
                await anyio.to_thread.run_sync(self._append, line)
            except OSError as exc:
                raise DeliveryError(f"cannot append to {self.path}: {exc}") from exc

    async def aclose(self) -> None:
        return None


def _json_str(value: str) -> bytes:
    return json.dumps(value).encode("utf-8")


def sink_names(policy: Policy) -> list[str]:
    """Names of the sinks ``build_sinks`` makes for ``policy`` (pure: no I/O, no clients)."""
    names: list[str] = []
    if policy.reports.webhook_url:
        names.append(WebhookSink.name)
    if policy.reports.jsonl_path is not None:
        names.append(JsonlSink.name)
    return names


def build_sinks(policy: Policy) -> list[ReportSink]:
    """The sinks configured in ``policy.reports`` (the provider pull API needs none)."""
    rp = policy.reports
    sinks: list[ReportSink] = []
    if rp.webhook_url:
        assert rp.webhook_secret is not None  # the policy validator requires it
        sinks.append(
            WebhookSink(
                rp.webhook_url,
                rp.webhook_secret.get_secret_value(),
                rp.webhook_timeout_seconds,
                max_connections=min(rp.outbox_batch, 64),
            )
        )
    if rp.jsonl_path is not None:
        sinks.append(JsonlSink(rp.jsonl_path))
    return sinks
