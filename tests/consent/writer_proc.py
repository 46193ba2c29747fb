"""A consent writer in its own process (used by the concurrency and crash tests and the bench).

``python -m tests.consent.writer_proc URL COUNT TAG`` records COUNT grants and prints each
record id only after ``record()`` returned, i.e. after the commit: the crash test relies on that.
"""

from __future__ import annotations

import sys

import anyio

from aiguard.policy.prompts import Catalogue
from aiguard.services.consent import MIGRATIONS, ConsentService
from aiguard.store import open_database
from tests.consent.conftest import identity, make_policy


async def main(url: str, count: int, tag: str) -> None:
    db = open_database(url, pool_size=2)
    await db.migrate(MIGRATIONS)  # every writer migrates at start: must be race-free
    service = ConsentService(db, make_policy(), Catalogue())
    print("ready", flush=True)
    for i in range(count):
        subject = f"{tag}{i:08x}".ljust(32, "0")
        [rec] = await service.record(identity(subject), ["ai_interaction"], "granted")
        print(rec.record_id, flush=True)
    await db.close()


if __name__ == "__main__":
    anyio.run(main, sys.argv[1], int(sys.argv[2]), sys.argv[3])
