"""A LangChain chain guarded by aiguard: disclosure, screening and metadata, sync and async.

    python -m examples.langchain_example

Runs offline with LangChain's fake chat model; with ``OPENAI_API_KEY`` set and
``langchain-openai`` installed it uses ``ChatOpenAI`` instead.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel, GenericFakeChatModel
from langchain_core.prompts import ChatPromptTemplate

from aiguard import load_policy
from aiguard.integrations.langchain import guard_runnable

ANSWERS = [
    "Our support team answers at help@example.com within a day. Anything else?",
    "Sure. I can also help you write an email to them.",
    "Bien sûr : écrivez à help@example.com, nous répondons sous 24 heures.",
]


def chat_model() -> BaseChatModel:
    if os.environ.get("OPENAI_API_KEY"):
        try:
            from langchain_openai import ChatOpenAI  # type: ignore[import-not-found]
        except ImportError:
            pass
        else:
            return ChatOpenAI(model="gpt-4o-mini")  # type: ignore[no-any-return]
    return GenericFakeChatModel(messages=iter(ANSWERS * 3))


async def main() -> None:
    workdir = Path(tempfile.mkdtemp(prefix="aiguard-lc-"))
    policy = load_policy(
        identity={"secret_file": str(workdir / "secret")},
        storage={"url": f"sqlite:///{workdir / 'aiguard.db'}"},
    )
    prompt = ChatPromptTemplate.from_messages([("human", "{question}")])
    chain = prompt | guard_runnable(chat_model(), policy=policy)

    config: Any = {"configurable": {"conversation_id": "c-1", "user_id": "user-42"}}
    answer = await chain.ainvoke({"question": "How do I reach support?"}, config)
    print("first answer (disclosed, email redacted):\n ", answer.content)
    meta = answer.response_metadata["aiguard"]
    print("  metadata:", meta["message_id"], meta["disclosure"], meta["screening"]["verdict"])

    # same conversation: the disclosure was shown already ("first" mode)
    again = await chain.ainvoke({"question": "Thanks!"}, config)
    print("\nsame conversation:\n ", again.content)

    # a new conversation in French, streamed: the disclosure comes first, then screened chunks
    config_fr: Any = {"configurable": {"conversation_id": "c-2", "locale": "fr"}}
    print("\nstreamed, in French:\n  ", end="")
    async for chunk in chain.astream({"question": "Comment joindre le support ?"}, config_fr):
        print(chunk.content, end="|", flush=True)
    print()


if __name__ == "__main__":
    asyncio.run(main())
