"""Everything one middleware instance needs, built once and started on ASGI lifespan."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import anyio

from aiguard.asgi.identity import Pseudonymizer, load_secret
from aiguard.policy.models import Policy
from aiguard.policy.prompts import Catalogue
from aiguard.services.disclosure import DisclosureService

if TYPE_CHECKING:
    from starlette.routing import BaseRoute

    from aiguard.screens.base import AnswerScreener
    from aiguard.services.consent import ConsentService
    from aiguard.services.outbox import OutboxWorker
    from aiguard.services.records import RecordWriter
    from aiguard.services.reports import ReportService
    from aiguard.store.base import Database

log = logging.getLogger("aiguard")


class Runtime:
    """Services for one app. Components left ``None`` are built from the policy by ``start()``.

    Tests and embedders may inject their own (e.g. a screener) before ``start()``.
    """

    def __init__(self, policy: Policy, *, catalogue: Catalogue | None = None) -> None:
        self.policy = policy
        self.catalogue = catalogue or Catalogue(policy.prompts_dir, policy.default_locale)
        self.secret = load_secret(policy.identity)
        self.pseudonymizer = Pseudonymizer(self.secret)
        self.disclosure = DisclosureService(policy, self.catalogue)
        self.db: Database | None = None
        self.consent: ConsentService | None = None
        self.screener: AnswerScreener | None = None
        self.records: RecordWriter | None = None
        self.reports: ReportService | None = None
        self.outbox: OutboxWorker | None = None
        self.started = False
        self._start_lock: anyio.Lock | None = None

    @property
    def needs_storage(self) -> bool:
        return bool(self.policy.consent.required) or self.policy.reports.enabled

    async def ensure_started(self) -> None:
        if self.started:
            return
        if self._start_lock is None:
            self._start_lock = anyio.Lock()
        async with self._start_lock:
            if not self.started:
                await self.start()

    async def start(self) -> None:
        policy = self.policy
        if self.needs_storage or self.db is not None:
            await self._start_storage()
        if self.screener is None and policy.screening.enabled and policy.screening.screens:
            from aiguard.screens.pipeline import build_screener

            pipeline = build_screener(policy, self.catalogue)
            await pipeline.load()
            self.screener = pipeline
        self.started = True
        log.info("aiguard runtime started (storage=%s)", self.db.dialect if self.db else "none")

    async def _start_storage(self) -> None:
        from aiguard.services import consent, records, reports
        from aiguard.services.outbox import OutboxWorker
        from aiguard.services.sinks import build_sinks
        from aiguard.store import open_database

        policy = self.policy
        if self.db is None:
            self.db = open_database(policy.storage.url, pool_size=policy.storage.pool_size)
        await self.db.connect()
        await self.db.migrate([*consent.MIGRATIONS, *records.MIGRATIONS, *reports.MIGRATIONS])
        if self.consent is None:
            # every replica derives the same evidence key from the shared identity secret
            self.consent = consent.ConsentService(self.db, policy, self.catalogue, salt=self.secret)
        if policy.reports.enabled:
            if self.records is None:
                self.records = records.RecordWriter(self.db, policy)
            await self.records.start()
            if self.outbox is None:
                self.outbox = OutboxWorker(self.db, policy, sinks=build_sinks(policy))
            if self.reports is None:
                self.reports = reports.ReportService(
                    self.db, policy, self.catalogue, self.records, notify=self.outbox.wake
                )
            await self.outbox.start()

    async def stop(self) -> None:
        if self.outbox is not None:
            await self.outbox.stop()
        if self.records is not None:
            await self.records.stop()
        if self.db is not None:
            await self.db.close()
        self.started = False

    def api_routes(self) -> list[BaseRoute]:
        """Routes under ``policy.prefix``, relative to it."""
        from aiguard.asgi import consent_api, reports_api, widget_api

        routes: list[Any] = [*widget_api.routes(self), *consent_api.routes(self)]
        if self.policy.reports.enabled:
            routes.extend(reports_api.routes(self))
        return routes
