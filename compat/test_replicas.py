"""Two Switchyard *processes* sharing one real `redis-server` (`state.redis`),
driven by the official OpenAI SDK, as behind a load balancer: a key's `rpm`
holds across both (exactly `rpm` of 30 alternating requests admitted, the
rest `RateLimitError` with OpenAI's headers), a budget spent through one is
spent on the other, the response cache is shared, and stopping Redis
mid-run follows `on_error: fail_open` (both keep serving) until it returns.

Needs `redis-server` on PATH (`.ci/run` installs Debian's).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import socket
import subprocess
import textwrap
import time
import urllib.request
from pathlib import Path
from typing import Iterator

import openai
import pytest

from conftest import Router, _finish, _no_proxy_opener, _start, free_port, make_client

KEY = "sk-sy-compat-replicas-0123456789abcdef"
BUDGET_KEY = "sk-sy-compat-replicas-budget-0123456789"
#: A key with a generous limit: its admissions go through Redis.
BUSY_KEY = "sk-sy-compat-replicas-busy-0123456789"
HELLO = [{"role": "user", "content": "hello"}]


class RedisServer:
    """`redis-server` on a free loopback port, with no persistence."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> "RedisServer":
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is not installed (Debian: apt-get install redis-server; .ci/run does)")
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.workdir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return self
            except OSError:
                pass
            time.sleep(0.05)  # bounded by the deadline above
        raise RuntimeError("redis-server did not answer PING within 10 s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@pytest.fixture(scope="module")
def redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def replicas(redis: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Router, Router]]:
    config = textwrap.dedent(f"""\
        upstreams:
          builtin:
            provider: mock
        models:
          demo:
            targets: [{{ upstream: builtin }}]
            pricing: {{ input_per_million: 1000000, output_per_million: 1000000 }}
          cached:
            targets: [{{ upstream: builtin, model: demo }}]
            cache: {{ ttl: 5m }}
        keys:
          - {{ name: team, sha256: {digest(KEY)}, rpm: 10 }}
          - {{ name: budgeted, sha256: {digest(BUDGET_KEY)}, budget: {{ daily_usd: 5 }} }}
          - {{ name: free, sha256: {digest(FREE_KEY)} }}
          - {{ name: busy, sha256: {digest(BUSY_KEY)}, rpm: 1000 }}
        state:
          redis: {{ url: "{redis.url}", on_error: fail_open, timeout: 200ms }}
        cache:
          shared: true
        """)
    a = _start("replica-a", config, tmp_path_factory)
    b = _start("replica-b", config, tmp_path_factory)
    yield a, b
    _finish(a)
    _finish(b)


def test_thirty_requests_through_two_processes_admit_exactly_the_rpm(replicas):
    a, b = replicas
    admitted, refused = 0, []
    for i in range(30):
        router = a if i % 2 == 0 else b
        with make_client(router.base_url, api_key=KEY, max_retries=0) as c:
            try:
                raw = c.chat.completions.with_raw_response.create(model="demo", messages=HELLO)
                admitted += 1
                assert raw.headers["x-ratelimit-limit-requests"] == "10"
                assert raw.headers["x-ratelimit-remaining-requests"] == str(10 - admitted)
            except openai.RateLimitError as e:
                refused.append(e)
    assert admitted == 10
    assert len(refused) == 20
    for e in refused:
        assert e.code == "rate_limit_exceeded"
        assert e.response.headers["x-ratelimit-remaining-requests"] == "0"
        assert 1 <= int(e.response.headers["retry-after"]) <= 6
        assert KEY not in e.response.text


def test_a_budget_spent_through_one_process_is_spent_on_the_other(replicas):
    a, b = replicas
    with make_client(a.base_url, api_key=BUDGET_KEY, max_retries=0) as c:
        c.chat.completions.create(model="demo", messages=HELLO)  # costs more than $5
    deadline = time.monotonic() + 5
    while True:
        with make_client(b.base_url, api_key=BUDGET_KEY, max_retries=0) as c:
            try:
                c.chat.completions.create(model="demo", messages=HELLO)
            except openai.RateLimitError as e:
                assert e.code == "insufficient_quota"
                break
        # The spend is settled in Redis just after the answer: poll briefly.
        assert time.monotonic() < deadline, "the other replica never saw the spend"
        time.sleep(0.05)


def test_the_cache_is_shared_byte_for_byte(replicas):
    a, b = replicas
    ask = [{"role": "user", "content": "a cached question"}]
    first = _raw(a, ask)
    assert first.headers["x-switchyard-cache"] == "miss"
    deadline = time.monotonic() + 5
    while True:
        second = _raw(b, ask)
        if second.headers["x-switchyard-cache"] == "hit":
            break
        assert time.monotonic() < deadline, "the entry never reached the other replica"
        time.sleep(0.05)
    assert second.content == first.content


class Raw:
    """Status, headers and the exact body bytes of one answer."""

    def __init__(self, headers, content: bytes) -> None:
        self.headers = headers
        self.content = content


def _raw(router: Router, messages) -> Raw:
    body = json.dumps({"model": "cached", "messages": messages, "temperature": 0}).encode()
    request = urllib.request.Request(
        f"{router.url}/v1/chat/completions", data=body, method="POST",
        headers={"authorization": f"Bearer {FREE_KEY}", "content-type": "application/json"})
    with _no_proxy_opener().open(request, timeout=10) as response:
        return Raw(response.headers, response.read())


FREE_KEY = "sk-sy-compat-replicas-free-0123456789"


def test_redis_stopped_mid_run_follows_fail_open_and_comes_back(replicas, redis: RedisServer):
    a, b = replicas
    redis.stop()
    try:
        for router in (a, b, a, b):
            with make_client(router.base_url, api_key=BUSY_KEY, max_retries=0) as c:
                raw = c.chat.completions.with_raw_response.create(model="demo", messages=HELLO)
                assert raw.parse().choices[0].message.content
                # Admitted by the replica's own limits meanwhile.
                assert raw.headers["x-ratelimit-limit-requests"] == "1000"
        assert _redis_up(a) == 0
    finally:
        redis.start()
    deadline = time.monotonic() + 10
    while _redis_up(a) != 1:
        with make_client(a.base_url, api_key=BUSY_KEY, max_retries=0) as c:
            c.chat.completions.create(model="demo", messages=HELLO)
        assert time.monotonic() < deadline, "the replica never found Redis again"
        time.sleep(0.2)
    assert not a.exited_early() and not b.exited_early()
    assert "Redis is unavailable" in a.log()
    assert "Redis answers again" in a.log()
    assert redis.url not in a.log()


def _redis_up(router: Router) -> int:
    """The value of the `switchyard_redis_up` sample (not its HELP line)."""
    for line in _metrics(router).splitlines():
        if line.startswith("switchyard_redis_up "):
            return int(float(line.split()[1]))
    raise AssertionError("no switchyard_redis_up sample")


def _metrics(router: Router) -> str:
    with _no_proxy_opener().open(f"{router.url}/metrics", timeout=5) as response:
        return response.read().decode()
