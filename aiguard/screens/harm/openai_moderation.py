"""The OpenAI Moderation endpoint as a harm backend (official ``openai`` AsyncOpenAI client)."""

from __future__ import annotations

import os
from typing import Any

import openai

from aiguard.errors import ConfigError
from aiguard.screens.harm._categories import CATEGORIES, merge_max

DEFAULT_MODEL = "omni-moderation-latest"


class OpenAIModerationBackend:
    """Calls ``POST {base_url}/moderations``; sub-categories roll up to their parent (max)."""

    name = "openai"

    def __init__(
        self,
        *,
        model: str = DEFAULT_MODEL,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout: float = 5.0,
        max_retries: int = 1,
        client: openai.AsyncOpenAI | None = None,
    ) -> None:
        if timeout <= 0:
            raise ConfigError("openai moderation timeout must be > 0")
        if max_retries < 0:
            raise ConfigError("openai moderation max_retries must be >= 0")
        self.model = model
        self.timeout = timeout
        self.max_retries = max_retries
        self._api_key = api_key
        self._base_url = base_url
        self._client = client

    async def load(self) -> None:
        if self._client is not None:
            return
        key = self._api_key or os.environ.get("OPENAI_API_KEY")
        if not key:
            raise ConfigError("the openai harm backend needs api_key or OPENAI_API_KEY")
        self._client = openai.AsyncOpenAI(
            api_key=key, base_url=self._base_url, timeout=self.timeout, max_retries=self.max_retries
        )

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.close()

    async def classify(self, text: str) -> dict[str, float]:
        if self._client is None:
            raise RuntimeError("OpenAIModerationBackend.load() was not awaited")
        # openai errors (timeout, HTTP status, connection) propagate; HarmScreen wraps them
        response = await self._client.moderations.create(model=self.model, input=text)
        if not response.results:
            raise ValueError("moderation response has no results")
        raw: dict[str, Any] = response.results[0].category_scores.model_dump(by_alias=True)
        return merge_max(
            dict.fromkeys(CATEGORIES, 0.0),
            {k: float(v) for k, v in raw.items() if isinstance(v, int | float)},
        )
