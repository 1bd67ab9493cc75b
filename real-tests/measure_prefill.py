"""Measures what llama-server does with a chat request that ends with a
partial assistant message: does it continue that text, or start the answer
again? (docs/real-model.md records a run; `prefill: assistant` in a
router.yaml relies on the answer.)

    .venv-real/bin/python real-tests/measure_prefill.py LLAMA_SERVER MODEL.gguf [extra flags...]

Starts one llama-server on a free 127.0.0.1 port with the extra flags (for
example `--jinja`), asks each prompt at temperature 0 without and with the
assistant prefix, prints the requests' messages and the answers, and stops
the server. Not a test: it reports, a person (or the doc) judges.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

CASES = [
    ("Count from 1 to 30 separated by spaces.", "1 2 3 4 5 6 7 8 9 10"),
    ("What is the capital of France? Answer in one sentence.", "The capital of France is"),
    ("List the days of the week, separated by commas.", "Monday, Tuesday, Wednesday,"),
]
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def post(url: str, body: dict) -> dict:
    request = urllib.request.Request(url, json.dumps(body).encode(),
                                     {"content-type": "application/json"})
    with OPENER.open(request, timeout=120) as response:
        return json.load(response)


def stream(url: str, body: dict) -> list[str]:
    request = urllib.request.Request(url, json.dumps({**body, "stream": True}).encode(),
                                     {"content-type": "application/json"})
    deltas = []
    with OPENER.open(request, timeout=120) as response:
        for line in response:
            line = line.strip()
            if not line.startswith(b"data: ") or line == b"data: [DONE]":
                continue
            for choice in json.loads(line[6:]).get("choices", []):
                content = (choice.get("delta") or {}).get("content")
                if content:
                    deltas.append(content)
    return deltas


def main() -> int:
    server, model, *flags = sys.argv[1:]
    port = free_port()
    command = [server, "-m", model, "--host", "127.0.0.1", "--port", str(port),
               "-c", "2048", "-np", "1", *flags]
    print("$", " ".join(command), flush=True)
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with OPENER.open(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.1)
        else:
            print("llama-server did not become healthy in 60 s")
            return 1
        url = f"http://127.0.0.1:{port}/v1/chat/completions"
        for prompt, prefix in CASES:
            for messages in ([{"role": "user", "content": prompt}],
                             [{"role": "user", "content": prompt},
                              {"role": "assistant", "content": prefix}]):
                body = {"messages": messages, "temperature": 0, "max_tokens": 80}
                try:
                    answer = post(url, body)
                    text = answer["choices"][0]["message"]["content"]
                    deltas = stream(url, body)
                    note = (f"completion_tokens {answer['usage']['completion_tokens']}; "
                            f"streamed {'the same' if ''.join(deltas) == text else 'other'} "
                            f"text, first deltas {deltas[:3]!r}")
                except urllib.error.HTTPError as e:
                    text, note = f"HTTP {e.code}: {e.read().decode(errors='replace')}", ""
                print(f"\nmessages: {json.dumps(messages)}\nanswer:   {text!r}\n          ({note})",
                      flush=True)
    finally:
        process.terminate()
        process.wait(timeout=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
