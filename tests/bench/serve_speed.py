"""Tokens per second of `python launch.py serve` on the bundled demo model, measured from the client's side.

    .venv/bin/python tests/bench/serve_speed.py [--model assets/models/workbench-demo-5m] [--requests 5]
                                                [--max-tokens 128]

Starts the server on a free port (one model, no adapter), sends greedy requests with the official `openai` client
one after another, then the same number from two clients at once, and prints generated tokens per second of wall
time (usage.completion_tokens summed over the requests, HTTP and all) for each: chat requests (the demo model's
chat replies are a few tokens long, so these are dominated by the cost of a request) and completions of Bible
verses (which run to --max-tokens: the generation speed); then the mean time to the first streamed chat text.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import openai

ROOT = Path(__file__).resolve().parents[2]
QUESTIONS = ["Who are you?", "What is the first book of the Bible?", "Tell me a story.", "What is light?",
             "Who made the heavens?"]
OPENINGS = ["In the beginning", "And God said", "The LORD is my shepherd", "Blessed are the", "And it came to pass"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(ROOT / "assets/models/workbench-demo-5m"))
    parser.add_argument("--requests", type=int, default=5)
    parser.add_argument("--max-tokens", type=int, default=128)
    args = parser.parse_args()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    server = subprocess.Popen([sys.executable, "launch.py", "serve", "--model", args.model, "--port", str(port)],
                              cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        while True:
            if server.poll() is not None:
                raise SystemExit("the server ended before it answered")
            try:
                httpx.get(f"{url}/models", timeout=2)
                break
            except httpx.TransportError:
                time.sleep(0.3)
        client = openai.OpenAI(base_url=url, api_key="none", max_retries=0)
        name = client.models.list().data[0].id
        prompts = [QUESTIONS[i % len(QUESTIONS)] for i in range(args.requests)]

        def ask(question: str) -> int:
            done = client.chat.completions.create(model=name, messages=[{"role": "user", "content": question}],
                                                  max_tokens=args.max_tokens, temperature=0)
            return done.usage.completion_tokens

        def complete(opening: str) -> int:
            done = client.completions.create(model=name, prompt=opening, max_tokens=args.max_tokens, temperature=0)
            return done.usage.completion_tokens

        ask("Hello")  # warm-up
        openings = [OPENINGS[i % len(OPENINGS)] for i in range(args.requests)]
        for kind, call, inputs in (("chat", ask, prompts), ("completions", complete, openings)):
            for label, workers in (("one client", 1), ("two clients at once", 2)):
                started = time.perf_counter()
                with ThreadPoolExecutor(workers) as pool:
                    tokens = sum(pool.map(call, inputs * workers))
                seconds = time.perf_counter() - started
                print(f"{kind}, {label}: {len(inputs) * workers} requests, {tokens} tokens in {seconds:.2f} s = "
                      f"{tokens / seconds:.1f} tokens/s")
        firsts = []
        for question in prompts:
            started = time.perf_counter()
            stream = client.chat.completions.create(model=name, messages=[{"role": "user", "content": question}],
                                                    max_tokens=args.max_tokens, temperature=0, stream=True)
            seen = [time.perf_counter() - started for chunk in stream
                    if chunk.choices and chunk.choices[0].delta.content]
            firsts += seen[:1]
        print(f"time to the first streamed text: {sum(firsts) / max(len(firsts), 1) * 1000:.0f} ms (mean of "
              f"{len(firsts)})")
    finally:
        server.terminate()
        server.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
