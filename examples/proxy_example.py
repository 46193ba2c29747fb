"""The guarding proxy end to end, on loopback, with no network and no key.

    python -m examples.proxy_example

1. serves ``examples/chatbot.py``'s scripted OpenAI-compatible model as the "upstream";
2. serves ``build_proxy(upstream)`` in front of it, as ``aiguard proxy --upstream URL`` would;
3. talks to the proxy with the official ``openai`` client, exactly as a chatbot in any language
   would with its OpenAI base URL set to ``http://127.0.0.1:<port>/v1``.

Against a real provider: ``aiguard proxy --upstream https://api.openai.com/v1
--upstream-key-env OPENAI_API_KEY`` and point the chatbot at ``http://127.0.0.1:8080/v1``.
"""

from __future__ import annotations

import contextlib
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import uvicorn

from aiguard import load_policy
from aiguard.proxy import build_proxy
from examples.chatbot import ScriptedModel, build_app


@contextlib.contextmanager
def serve(app: Any) -> Iterator[str]:
    """Run ``app`` with uvicorn on a free loopback port in a background thread."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def main() -> None:
    workdir = Path(tempfile.mkdtemp(prefix="aiguard-proxy-"))
    policy = load_policy(
        identity={"secret_file": str(workdir / "secret")},
        storage={"url": f"sqlite:///{workdir / 'aiguard.db'}"},
    )
    with (
        serve(build_app(ScriptedModel(delay=0.02))) as upstream,
        serve(build_proxy(upstream + "/v1", policy=policy)) as proxy,
    ):
        # the chatbot passes its end user's id, so consent and reports follow the person
        client = openai.OpenAI(
            base_url=proxy + "/v1",
            api_key="passed-through-to-the-upstream",
            default_headers={"X-AIGuard-Subject": "user-42"},
        )
        question = [{"role": "user", "content": "What is the capital of France?"}]
        raw = client.chat.completions.with_raw_response.create(
            model="scripted-demo-1",
            messages=question,  # type: ignore[arg-type]
        )
        answer = raw.parse()
        print("answer:     ", answer.choices[0].message.content)
        print("header:     ", raw.headers["ai-disclosure"])
        print("message id: ", raw.headers["x-aiguard-message-id"])

        print("streamed:    ", end="", flush=True)
        stream = client.chat.completions.create(
            model="scripted-demo-1",
            messages=question,  # type: ignore[arg-type]
            stream=True,
        )
        for chunk in stream:
            if chunk.choices:
                print(chunk.choices[0].delta.content or "", end="", flush=True)
        print()
        client.close()


if __name__ == "__main__":
    main()
