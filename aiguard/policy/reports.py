from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, field_validator, model_validator

from aiguard.policy._base import Section


class ReportsPolicy(Section):
    """Message records and inaccuracy reports: intake limits, delivery, retention."""

    enabled: bool = True
    """Serve ``/reports`` and the provider API; ``false`` removes those routes."""
    store_answers: bool = True
    """Keep answer text in message records; ``false`` keeps only its sha256."""
    retention_days: int = Field(default=90, ge=1)
    """Message records, and reports with no delivery still pending, are deleted this many days
    after their last change (``aiguard purge``; the worker also purges every
    ``purge_interval_seconds``)."""
    procedure: str = "report_procedure"
    """The prompt (under ``prompts/<locale>/``) returned to reporters: what happens to a report."""

    # --- where reports go -------------------------------------------------------------------
    webhook_url: str | None = None
    """POST every report event here as signed JSON (see docs/reports.md). Unset: no webhook."""
    webhook_secret: SecretStr | None = None
    """HMAC-SHA256 key for the ``AIGuard-Signature`` header; required with ``webhook_url``."""
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    """Per-request timeout; must stay well below ``lease_seconds``."""
    jsonl_path: Path | None = None
    """Also append every report event as one JSON line (fsynced) to this file."""
    provider_token: SecretStr | None = None
    """Bearer token of the provider pull API (``/provider/reports``); unset disables it (404)."""

    # --- delivery ---------------------------------------------------------------------------
    max_attempts: int = Field(default=30, ge=1, le=1000)
    """Deliveries that fail this many times are dead-lettered (``aiguard reports retry`` requeues
    them). With the default backoff, 30 attempts keep retrying for 10 to 20 hours."""
    backoff_base_seconds: float = Field(default=5.0, gt=0)
    """First retry delay; doubles per attempt, with jitter, up to ``backoff_max_seconds``."""
    backoff_max_seconds: float = Field(default=3600.0, gt=0)
    """Longest delay between two attempts (a receiver's ``Retry-After`` is honoured up to it)."""
    lease_seconds: float = Field(default=120.0, gt=0)
    """A claimed delivery belongs to one worker this long; a crashed worker's rows come back
    after it expires."""
    poll_interval_seconds: float = Field(default=1.0, gt=0)
    """How often the worker looks for due deliveries (a report accepted in this process wakes it
    at once)."""
    outbox_batch: int = Field(default=16, ge=1, le=1000)
    """Deliveries claimed, and sent concurrently, per round."""
    purge_interval_seconds: float = Field(default=3600.0, gt=0)
    """How often each worker deletes what is past ``retention_days``."""

    # --- intake limits ----------------------------------------------------------------------
    rate_limit: int = Field(default=10, ge=1)
    """Report submissions (new or updated) a subject may make per ``rate_window_seconds``;
    counted in the database, so every replica shares the budget."""
    rate_window_seconds: int = Field(default=3600, ge=1)
    """The sliding window of ``rate_limit``."""
    comment_max_chars: int = Field(default=2000, ge=1, le=20_000)
    """Longest reporter comment (characters, after trimming); longer is a 422."""
    correction_max_chars: int = Field(default=4000, ge=1, le=20_000)
    """Longest suggested correction (characters, after trimming); longer is a 422."""
    reply_max_chars: int = Field(default=4000, ge=1, le=20_000)
    """Longest provider reply accepted by the resolution endpoint."""

    # --- message records --------------------------------------------------------------------
    record_batch_size: int = Field(default=256, ge=1, le=5000)
    """Records written per transaction; a full batch is flushed without waiting."""
    record_flush_ms: float = Field(default=50.0, gt=0)
    """Longest a record waits in memory before it is written."""
    record_queue_max: int = Field(default=10_000, ge=1)
    """Records held in memory at most; beyond that new records are dropped and counted
    (answers are never slowed down by storage)."""

    @field_validator("webhook_url")
    @classmethod
    def _http_url(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> ReportsPolicy:
        if self.webhook_url and self.webhook_secret is None:
            raise ValueError("webhook_url needs webhook_secret (receivers verify signatures)")
        if self.webhook_secret is not None and len(self.webhook_secret.get_secret_value()) < 16:
            raise ValueError("webhook_secret: use at least 16 characters")
        if self.provider_token is not None and len(self.provider_token.get_secret_value()) < 16:
            raise ValueError("provider_token: use at least 16 characters")
        if self.lease_seconds < 2 * self.webhook_timeout_seconds:
            raise ValueError("lease_seconds must be at least twice webhook_timeout_seconds")
        if self.backoff_max_seconds < self.backoff_base_seconds:
            raise ValueError("backoff_max_seconds must be >= backoff_base_seconds")
        return self
