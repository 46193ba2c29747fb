"""RFC 9457 problem details: every error aiguard answers with is ``application/problem+json``."""

from __future__ import annotations

import json
import logging
from typing import Any

from starlette.responses import Response

log = logging.getLogger("aiguard")

# a URN: stable and unique, without promising a web page at a domain we do not control
PROBLEM_BASE = "urn:aiguard:problem:"


class ProblemResponse(Response):
    media_type = "application/problem+json"

    def __init__(
        self,
        status: int,
        code: str,
        title: str,
        detail: str = "",
        *,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        body: dict[str, Any] = {"type": PROBLEM_BASE + code, "title": title, "status": status}
        if detail:
            body["detail"] = detail
        body.update(extra)
        log.info("problem %s %s: %s", status, code, detail or title)
        super().__init__(
            json.dumps(body, ensure_ascii=False).encode("utf-8"),
            status_code=status,
            headers=headers,
        )


def problem(status: int, code: str, title: str, detail: str = "", **extra: Any) -> ProblemResponse:
    return ProblemResponse(status, code, title, detail, **extra)
