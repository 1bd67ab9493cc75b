"""Fixtures: the mock upstream, the real `switchyard` binary in front of it,
and OpenAI SDK clients pointed at the router (and, for the Messages front
door, Anthropic SDK clients).

The binary is `$SWITCHYARD_BIN`, else `target/debug/switchyard` under the
repository root (`./scripts/test.sh` builds it first). Everything listens on
127.0.0.1; every wait has a deadline.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import textwrap
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import anthropic
import openai
import pytest

from mock_upstream import (
    ANTHROPIC_CUT_EARLY,
    ANTHROPIC_CUT_STREAM,
    ANTHROPIC_ERROR_MID_STREAM,
    ANTHROPIC_HANG,
    ANTHROPIC_MODEL,
    ANTHROPIC_OVERLOADED,
    ANTHROPIC_RATE_LIMITED,
    ANTHROPIC_STREAM_OVERLOADED,
    BEDROCK_ACCESS_KEY_ID,
    BEDROCK_API_KEY,
    BEDROCK_CLAUDE,
    BEDROCK_CUT_STREAM,
    BEDROCK_GUARDRAIL,
    BEDROCK_HANG,
    BEDROCK_LLAMA,
    BEDROCK_SECRET_ACCESS_KEY,
    BEDROCK_SESSION_TOKEN,
    BEDROCK_SLOW,
    BEDROCK_STREAM_EXCEPTION,
    BEDROCK_STREAM_THROTTLED,
    BEDROCK_THROTTLED,
    BEDROCK_UNAVAILABLE,
    CHAT_CALLS_AT_INDEX_ZERO,
    CHAT_ERROR_AT_ONCE,
    CHAT_ERROR_LATE,
    CHAT_ERROR_MID_STREAM,
    CHAT_FILTERED,
    CHAT_HANG,
    CHAT_NO_DONE,
    CHAT_NO_PREFILL,
    CHAT_REASONER,
    CHAT_REFUSER,
    CHAT_TERSE_STREAM,
    CHAT_TRUNCATED,
    GEMINI_3_MODEL,
    GEMINI_BLOCKED,
    GEMINI_CUT_STREAM,
    GEMINI_ERROR_MID_STREAM,
    GEMINI_HANG,
    GEMINI_KEY,
    GEMINI_MODEL,
    GEMINI_OVERLOADED,
    GEMINI_QUOTA,
    GEMINI_SLOW,
    MockUpstream,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
#: Deadline for the router to answer `GET /health` after it is started.
STARTUP_DEADLINE_S = 10.0
#: Deadline for the router to exit after SIGTERM before it is killed.
SHUTDOWN_DEADLINE_S = 10.0
#: Per-request deadline of the SDK clients (a failing test, never a measurement).
CLIENT_TIMEOUT_S = 30.0

#: The key every SDK client sends; the router must never forward it.
CLIENT_KEY = "sk-test-dummy"
#: The key Switchyard sends to the mock upstream instead.
UPSTREAM_KEY = "sk-upstream-secret-for-compat"
#: The one key the second (authenticated) router accepts.
ROUTER_KEY = "sk-router-compat-key"
#: The key the Anthropic router's `provider: anthropic` upstream sends (as `x-api-key`).
ANTHROPIC_KEY = "sk-ant-upstream-secret-for-compat"
#: A key the Gemini mock does not know, on the `gem-badkey` upstream.
GEMINI_WRONG_KEY = "AIzaSyCompatWrongKeyTheMockRefuses000000"
#: A secret key that does not go with `BEDROCK_ACCESS_KEY_ID` (`br-badsecret`).
BEDROCK_WRONG_SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYWRONGSECRET"
#: The AWS region the Bedrock router signs for (`bedrock.region`).
BEDROCK_REGION = "us-east-1"
#: The region of the Bedrock upstream that uses an API key (no signature).
BEDROCK_KEY_REGION = "us-west-2"
#: Every secret the Gemini and Bedrock routers hold: none may reach a client.
SECRETS = {
    "client key": CLIENT_KEY,
    "OpenAI upstream key": UPSTREAM_KEY,
    "Gemini key": GEMINI_KEY,
    "AWS secret access key": BEDROCK_SECRET_ACCESS_KEY,
    "wrong AWS secret access key": BEDROCK_WRONG_SECRET,
    "AWS session token": BEDROCK_SESSION_TOKEN,
    "Bedrock API key": BEDROCK_API_KEY,
}
#: `max_tokens` the router sends up when the client gives none (its default).
ANTHROPIC_DEFAULT_MAX_TOKENS = 4096
#: `server.max_body_bytes` of the main router.
MAX_BODY_BYTES = 64 * 1024
#: `timeouts.first_byte` of the upstream that serves the `slow` model.
FIRST_BYTE_TIMEOUT_MS = 500
#: `timeouts.idle` of the resume router's `resume-stall` model.
RESUME_IDLE_MS = 500
#: Referenced as `${...}` by one upstream and never set.
UNSET_VAR = "SWITCHYARD_COMPAT_UNSET_VAR"

#: Models of the main router, in config order (`GET /v1/models` keeps it).
#: router name -> upstream model name (None: the built-in mock or no upstream).
MODELS: dict[str, str | None] = {
    "mock-gpt": "upstream-gpt",  # renamed on the way up
    "same-name": "same-name",  # sent up under its own name
    "text-embedding-mock": "upstream-embed",
    "qwen2.5:0.5b": "qwen2.5:0.5b",  # a name with `:` and `.`
    "meta-llama/Llama-3-8B": "meta-llama/Llama-3-8B",  # a name with `/`
    "fail-429": "fail-429",
    "fail-500": "fail-500",
    "fail-400": "fail-400",
    # The same failures with the router's own retries off, so the SDK's show.
    "fail-429-no-router-retry": "fail-429",
    "fail-500-no-router-retry": "fail-500",
    "slow": "slow",  # answers after the upstream's `first_byte` timeout
    "cut-stream": "cut-stream",  # the upstream drops the stream between events
    "cut-mid-event": "cut-mid-event",  # ... and in the middle of an event
    "demo": None,
    "needs-key": None,  # its upstream's api_key is an unset ${VAR}
    "unreachable": None,  # its upstream's port refuses connections
}

# Loopback must never go through a proxy, whatever the environment says.
for _var in ("NO_PROXY", "no_proxy"):
    os.environ[_var] = ",".join(filter(None, [os.environ.get(_var), "127.0.0.1", "localhost"]))


def _no_proxy_opener() -> urllib.request.OpenerDirector:
    return urllib.request.build_opener(urllib.request.ProxyHandler({}))


def free_port() -> int:
    """A port nobody listened on a moment ago (the router binds it next)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- the router process ------------------------------------------------------


@dataclass
class Router:
    """One `switchyard` process serving `config` on a free loopback port."""

    name: str
    binary: Path
    config: str
    workdir: Path
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    log_path: Path = field(init=False)

    def __post_init__(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config_path = self.workdir / "router.yaml"
        self.config_path.write_text(self.config)
        self.log_path = self.workdir / "switchyard.stderr.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """What the OpenAI SDK takes as `base_url`."""
        return f"{self.url}/v1"

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def start(self) -> "Router":
        if not self.binary.is_file():
            pytest.exit(
                f"switchyard binary not found at {self.binary}: run `cargo build` "
                "or set SWITCHYARD_BIN (./scripts/test.sh does both)",
                returncode=2,
            )
        env = {k: v for k, v in os.environ.items() if k != UNSET_VAR}
        env.setdefault("RUST_LOG", "info")
        env["NO_COLOR"] = "1"  # plain log lines in the stderr file
        # A port picked free can be taken before the router binds it; try again then.
        for _ in range(3):
            self.port = free_port()
            with open(self.log_path, "ab") as log:
                self.process = subprocess.Popen(
                    [str(self.binary), "--config", str(self.config_path),
                     "--listen", f"127.0.0.1:{self.port}"],
                    stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env,
                    cwd=self.workdir,
                )
            if self._wait_healthy():
                return self
            self.stop()
            if "in use" not in self.log().lower():
                break
        raise RuntimeError(
            f"switchyard ({self.name}) did not answer GET /health within "
            f"{STARTUP_DEADLINE_S}s; its stderr:\n{self.log()}"
        )

    def _wait_healthy(self) -> bool:
        assert self.process is not None
        opener = _no_proxy_opener()
        deadline = time.monotonic() + STARTUP_DEADLINE_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            try:
                with opener.open(f"{self.url}/health", timeout=1) as response:
                    if response.status == 200:
                        return True
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                pass
            time.sleep(0.02)  # poll interval, bounded by the deadline above
        return False

    def exited_early(self) -> bool:
        return self.process is not None and self.process.poll() is not None

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=SHUTDOWN_DEADLINE_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=SHUTDOWN_DEADLINE_S)


_ROUTERS: list[Router] = []


def _binary() -> Path:
    configured = os.environ.get("SWITCHYARD_BIN", "target/debug/switchyard")
    path = Path(configured)
    return path if path.is_absolute() else REPO_ROOT / path


def _start(name: str, config: str, tmp_path_factory: pytest.TempPathFactory) -> Router:
    router = Router(name, _binary(), config, tmp_path_factory.mktemp(name))
    _ROUTERS.append(router)
    return router.start()


def _finish(router: Router) -> None:
    died = router.exited_early()
    router.stop()
    if died:
        pytest.fail(f"switchyard ({router.name}) exited during the tests; its stderr:\n"
                    f"{router.log()}", pytrace=False)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Iterator[None]:
    """Attaches the tail of each router's stderr to a failing test's report."""
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for router in _ROUTERS:
            tail = "\n".join(router.log().splitlines()[-40:])
            report.sections.append((f"switchyard ({router.name}) stderr, last lines", tail))


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int) -> None:
    """After a failed run, each router's stderr (its access log included)."""
    if exitstatus == 0:
        return
    for router in _ROUTERS:
        lines = router.log().splitlines()
        shown = lines[-300:]
        cut = f" (last {len(shown)} of {len(lines)} lines)" if len(shown) < len(lines) else ""
        terminalreporter.section(f"switchyard ({router.name}) stderr{cut}")
        terminalreporter.write_line(f"config: {router.config_path}")
        for line in shown:
            terminalreporter.write_line(line)


# -- fixtures ----------------------------------------------------------------


@pytest.fixture(scope="session")
def mock_server() -> Iterator[MockUpstream]:
    server = MockUpstream().start()
    yield server
    server.stop()


@pytest.fixture
def upstream(mock_server: MockUpstream) -> MockUpstream:
    """The mock upstream, with an empty record for this test."""
    mock_server.reset()
    return mock_server


@pytest.fixture(scope="session")
def refused_port() -> Iterator[int]:
    """A loopback port that refuses connections: bound (so no one else takes
    it) but never listening, so a connect gets RST at once."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    yield s.getsockname()[1]
    s.close()


def main_config(upstream_url: str, refused_port: int) -> str:
    lines = [
        "# Written by compat/conftest.py.",
        "server:",
        f"  max_body_bytes: {MAX_BODY_BYTES}",
        "upstreams:",
        "  mockup:",
        "    provider: openai-compatible",
        f"    base_url: {upstream_url}",
        f"    api_key: {UPSTREAM_KEY}",
        "    health_check: false",
        "  slowup:",
        "    provider: openai-compatible",
        f"    base_url: {upstream_url}",
        "    health_check: false",
        f"    timeouts: {{ first_byte: {FIRST_BYTE_TIMEOUT_MS}ms }}",
        "  builtin:",
        "    provider: mock",
        "  keyless:",
        "    provider: openai-compatible",
        f"    base_url: {upstream_url}",
        f"    api_key: ${{{UNSET_VAR}}}",
        "    health_check: false",
        "  closed:",
        "    provider: openai-compatible",
        f"    base_url: http://127.0.0.1:{refused_port}/v1",
        "    health_check: false",
        "    timeouts: { connect: 5s, first_byte: 20s }",
        "models:",
    ]
    builtin = {"demo": "builtin", "needs-key": "keyless", "unreachable": "closed",
               "slow": "slowup"}
    for name, upstream_model in MODELS.items():
        if name in builtin:
            target = f"upstream: {builtin[name]}"
        elif upstream_model == name:
            target = "upstream: mockup"
        else:
            target = f"upstream: mockup, model: {json.dumps(upstream_model)}"
        lines.append(f"  {json.dumps(name)}:")
        lines.append(f"    targets: [{{ {target} }}]")
        if name.endswith("-no-router-retry"):
            lines.append("    retry: { attempts: 0 }")
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="session")
def router(mock_server: MockUpstream, refused_port: int,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[Router]:
    """The main router: mock upstream models, `demo`, and the broken upstreams."""
    r = _start("main", main_config(mock_server.base_url, refused_port), tmp_path_factory)
    yield r
    _finish(r)


@pytest.fixture(scope="session")
def auth_router(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Router]:
    """A second router that requires `ROUTER_KEY`."""
    config = textwrap.dedent(f"""\
        server:
          auth:
            keys: [{ROUTER_KEY!r}]
        upstreams:
          builtin:
            provider: mock
        models:
          demo:
            targets: [{{ upstream: builtin }}]
        """)
    r = _start("auth", config, tmp_path_factory)
    yield r
    _finish(r)


def anthropic_config(mock: MockUpstream) -> str:
    """The Anthropic router: `claude*` models on a `provider: anthropic`
    upstream (the mock's `/v1/messages`), and `gpt-fallback`, an OpenAI-shaped
    model on the same mock that `claude-overloaded` falls back to."""
    return textwrap.dedent(f"""\
        # Written by compat/conftest.py.
        upstreams:
          claude-up:
            provider: anthropic
            base_url: http://127.0.0.1:{mock.port}
            api_key: {ANTHROPIC_KEY}
            # The 529 model fails every time: no circuit may open on it, so
            # each request tries it (and retries it) the same way.
            circuit_breaker: false
          mockup:
            provider: openai-compatible
            base_url: {mock.base_url}
            api_key: {UPSTREAM_KEY}
            health_check: false
        models:
          claude:
            targets: [{{ upstream: claude-up, model: {ANTHROPIC_MODEL} }}]
          claude-overloaded:
            targets: [{{ upstream: claude-up, model: {ANTHROPIC_OVERLOADED} }}]
            fallbacks: [gpt-fallback]
          claude-overloaded-alone:
            targets: [{{ upstream: claude-up, model: {ANTHROPIC_OVERLOADED} }}]
          claude-cut:
            targets: [{{ upstream: claude-up, model: {ANTHROPIC_ERROR_MID_STREAM} }}]
          gpt-fallback:
            targets: [{{ upstream: mockup, model: upstream-gpt }}]
        """)


@pytest.fixture(scope="session")
def anthropic_router(mock_server: MockUpstream,
                     tmp_path_factory: pytest.TempPathFactory) -> Iterator[Router]:
    """A router whose `claude*` models are served by the mock's Anthropic API."""
    r = _start("anthropic", anthropic_config(mock_server), tmp_path_factory)
    yield r
    _finish(r)


def resume_config(mock: MockUpstream) -> str:
    """The resume router (`models.<name>.resume`): every model is a
    `priority` plan whose first target breaks its stream after the first
    token in one way or another (`first`: the mock, which needs no prefill
    to break), and whose next target continues it (`second`: the same mock
    with `prefill: assistant`, model `upstream-gpt`, which continues a
    prefill as llama.cpp does). `third` serves the mock's `no-prefill`
    model, which refuses a prefill with a 400; `noprefill` (the
    openai-compatible default `prefill: none`) can never continue one;
    `vllm` is asked to continue one as vLLM's chat API is.
    `unbroken` and `no-resume` are the yardsticks: the same answer whole, and
    the same cut without `resume`. No circuit may open, since the broken
    models break every time."""
    def up(name: str, extra: str = "") -> str:
        return (f"  {name}:\n    provider: openai-compatible\n    base_url: {mock.base_url}\n"
                f"    api_key: {UPSTREAM_KEY}\n    health_check: false\n"
                f"    circuit_breaker: false\n{extra}")
    def model(name: str, targets: list[tuple[str, str]], extra: str = "",
              resume: bool = True) -> str:
        lines = [f"  {name}:", "    strategy: priority"]
        if resume:
            lines.append("    resume: true")
        lines.append("    targets:")
        lines += [f"      - {{ upstream: {u}, model: {json.dumps(m)} }}" for u, m in targets]
        return "\n".join(lines) + "\n" + extra
    second = ("second", "upstream-gpt")
    return "".join([
        "# Written by compat/conftest.py.\nupstreams:\n",
        up("first"),
        up("second", "    prefill: assistant\n"),
        up("third", "    prefill: assistant\n"),
        up("noprefill"),
        up("vllm", "    prefill: vllm\n"),
        "models:\n",
        model("unbroken", [second], resume=False),
        model("resume-cut", [("first", "cut-stream"), second]),
        model("resume-cut-mid-event", [("first", "cut-mid-event"), second]),
        model("resume-stall", [("first", CHAT_HANG), second],
              f"    timeouts: {{ idle: {RESUME_IDLE_MS}ms }}\n"),
        model("resume-error", [("first", CHAT_ERROR_LATE), second]),
        model("resume-error-at-once", [("first", CHAT_ERROR_AT_ONCE), second]),
        model("resume-truncated", [("first", CHAT_TRUNCATED), second]),
        model("resume-nodone", [("first", CHAT_NO_DONE), second]),
        model("resume-refused", [("first", "cut-stream"), ("third", CHAT_NO_PREFILL)]),
        model("resume-skips", [("first", "cut-stream"), ("noprefill", "never-prefilled"),
                               second]),
        model("resume-tools", [("first", "cut-stream"), second]),
        model("resume-vllm", [("first", "cut-stream"), ("vllm", "upstream-gpt")]),
        model("no-resume", [("first", "cut-stream"), second], resume=False),
    ])


@pytest.fixture(scope="session")
def resume_router(mock_server: MockUpstream,
                  tmp_path_factory: pytest.TempPathFactory) -> Iterator[Router]:
    """A router whose `resume-*` models continue broken streams elsewhere."""
    r = _start("resume", resume_config(mock_server), tmp_path_factory)
    yield r
    _finish(r)


def gemini_config(mock: MockUpstream) -> str:
    """The Gemini router: models on a `provider: gemini` upstream (the mock's
    `/v1beta/models/...`), a slow one behind a short `first_byte` timeout,
    one whose key the mock refuses, and `gpt-backup`, an OpenAI-shaped model
    on the same mock that `gemini-overloaded` fails over to."""
    gem = lambda model: f"{{ upstream: gem, model: {model} }}"  # noqa: E731
    return textwrap.dedent(f"""\
        # Written by compat/conftest.py.
        upstreams:
          gem:
            provider: gemini
            base_url: http://127.0.0.1:{mock.port}
            api_key: {GEMINI_KEY}
            # Some models fail every time: no circuit may open on the upstream,
            # so that each request tries (and retries) them the same way.
            circuit_breaker: false
          gem-slow:
            provider: gemini
            base_url: http://127.0.0.1:{mock.port}
            api_key: {GEMINI_KEY}
            circuit_breaker: false
            timeouts: {{ first_byte: {FIRST_BYTE_TIMEOUT_MS}ms }}
          gem-badkey:
            provider: gemini
            base_url: http://127.0.0.1:{mock.port}
            api_key: {GEMINI_WRONG_KEY}
            circuit_breaker: false
          backup:
            provider: openai-compatible
            base_url: {mock.base_url}
            api_key: {UPSTREAM_KEY}
            health_check: false
        models:
          gemini-2.5-flash:
            targets: [{gem(GEMINI_MODEL)}]
          gemini-3:
            targets: [{gem(GEMINI_3_MODEL)}]
          gemini-overloaded:
            strategy: priority
            targets:
              - {gem(GEMINI_OVERLOADED)}
              - {{ upstream: backup, model: upstream-gpt }}
          gemini-overloaded-alone:
            targets: [{gem(GEMINI_OVERLOADED)}]
          gemini-quota:
            targets: [{gem(GEMINI_QUOTA)}]
          gemini-error-mid-stream:
            targets: [{gem(GEMINI_ERROR_MID_STREAM)}]
          gemini-cut-stream:
            targets: [{gem(GEMINI_CUT_STREAM)}]
          gemini-hang:
            targets: [{gem(GEMINI_HANG)}]
          gemini-slow:
            targets: [{{ upstream: gem-slow, model: {GEMINI_SLOW} }}]
          gemini-bad-key:
            targets: [{{ upstream: gem-badkey, model: {GEMINI_MODEL} }}]
          gemini-blocked:
            targets: [{gem(GEMINI_BLOCKED)}]
          gpt-backup:
            targets: [{{ upstream: backup, model: upstream-gpt }}]
        """)


@pytest.fixture(scope="session")
def gemini_router(mock_server: MockUpstream,
                  tmp_path_factory: pytest.TempPathFactory) -> Iterator[Router]:
    """A router whose `gemini-*` models are served by the mock's Gemini API."""
    r = _start("gemini", gemini_config(mock_server), tmp_path_factory)
    yield r
    _finish(r)


def bedrock_config(mock: MockUpstream) -> str:
    """The Bedrock router: models on a SigV4-signing `provider: bedrock`
    upstream (the mock's `/model/...`), with static keys and a session
    token; a slow one behind a short `first_byte` timeout; a Llama behind a
    Bedrock API key (Bearer, no signature); and `gpt-fallback`, an
    OpenAI-shaped model on the same mock that the throttled ones fall back to."""
    keys = (f"{{ region: {BEDROCK_REGION}, access_key_id: {BEDROCK_ACCESS_KEY_ID}, "
            f"secret_access_key: {json.dumps(BEDROCK_SECRET_ACCESS_KEY)}, "
            f"session_token: {json.dumps(BEDROCK_SESSION_TOKEN)} }}")
    # The right key id and session token, the wrong secret: AWS answers 403
    # InvalidSignatureException with the canonical request (token included).
    bad_keys = keys.replace(json.dumps(BEDROCK_SECRET_ACCESS_KEY),
                            json.dumps(BEDROCK_WRONG_SECRET))
    br = lambda model: f"{{ upstream: br, model: {json.dumps(model)} }}"  # noqa: E731
    return textwrap.dedent(f"""\
        # Written by compat/conftest.py.
        upstreams:
          br:
            provider: bedrock
            base_url: http://127.0.0.1:{mock.port}
            bedrock: {keys}
            # Some models fail every time: no circuit may open on the upstream.
            circuit_breaker: false
          br-slow:
            provider: bedrock
            base_url: http://127.0.0.1:{mock.port}
            bedrock: {keys}
            circuit_breaker: false
            timeouts: {{ first_byte: {FIRST_BYTE_TIMEOUT_MS}ms }}
          br-badsecret:
            provider: bedrock
            base_url: http://127.0.0.1:{mock.port}
            bedrock: {bad_keys}
            circuit_breaker: false
          br-key:
            provider: bedrock
            base_url: http://127.0.0.1:{mock.port}
            api_key: {json.dumps(BEDROCK_API_KEY)}
            bedrock: {{ region: {BEDROCK_KEY_REGION} }}
            circuit_breaker: false
          backup:
            provider: openai-compatible
            base_url: {mock.base_url}
            api_key: {UPSTREAM_KEY}
            health_check: false
        models:
          claude-bedrock:
            targets: [{br(BEDROCK_CLAUDE)}]
          llama-bedrock:
            targets: [{br(BEDROCK_LLAMA)}]
          llama-bedrock-key:
            targets: [{{ upstream: br-key, model: {json.dumps(BEDROCK_LLAMA)} }}]
          bedrock-throttled:
            targets: [{br(BEDROCK_THROTTLED)}]
            fallbacks: [gpt-fallback]
          bedrock-throttled-alone:
            targets: [{br(BEDROCK_THROTTLED)}]
          bedrock-unavailable-alone:
            targets: [{br(BEDROCK_UNAVAILABLE)}]
          bedrock-stream-exception:
            targets: [{br(BEDROCK_STREAM_EXCEPTION)}]
          bedrock-stream-throttled:
            targets: [{br(BEDROCK_STREAM_THROTTLED)}]
            fallbacks: [gpt-fallback]
          bedrock-cut-stream:
            targets: [{br(BEDROCK_CUT_STREAM)}]
          bedrock-hang:
            targets: [{br(BEDROCK_HANG)}]
          bedrock-guardrail:
            targets: [{br(BEDROCK_GUARDRAIL)}]
          bedrock-bad-secret:
            targets: [{{ upstream: br-badsecret, model: {json.dumps(BEDROCK_CLAUDE)} }}]
          bedrock-slow:
            targets: [{{ upstream: br-slow, model: {json.dumps(BEDROCK_SLOW)} }}]
          gpt-fallback:
            targets: [{{ upstream: backup, model: upstream-gpt }}]
        """)


@pytest.fixture(scope="session")
def bedrock_router(mock_server: MockUpstream,
                   tmp_path_factory: pytest.TempPathFactory) -> Iterator[Router]:
    """A router whose Bedrock models are served by the mock's Converse API."""
    r = _start("bedrock", bedrock_config(mock_server), tmp_path_factory)
    yield r
    _finish(r)


def door_config(mock: MockUpstream, refused_port: int) -> str:
    """The Messages-door router (`POST /v1/messages`, Anthropic's SDK as the
    client), with router keys on: `claude*` models on the mock's Anthropic
    API (passthrough), `gpt*` models on its OpenAI API (translated), a
    Claude that is always overloaded with an OpenAI fallback, one whose
    upstream refuses connections, and models on the other translating
    providers (Gemini, Bedrock with SigV4, the built-in mock), which the
    door reaches through the OpenAI translation."""
    bedrock_keys = (f"{{ region: {BEDROCK_REGION}, access_key_id: {BEDROCK_ACCESS_KEY_ID}, "
                    f"secret_access_key: {json.dumps(BEDROCK_SECRET_ACCESS_KEY)}, "
                    f"session_token: {json.dumps(BEDROCK_SESSION_TOKEN)} }}")
    return textwrap.dedent(f"""\
        # Written by compat/conftest.py.
        server:
          max_body_bytes: {MAX_BODY_BYTES}
          auth:
            keys: [{ROUTER_KEY!r}]
        upstreams:
          claude-up:
            provider: anthropic
            base_url: http://127.0.0.1:{mock.port}
            api_key: {ANTHROPIC_KEY}
            # Some models fail every time: no circuit may open on them.
            circuit_breaker: false
          mockup:
            provider: openai-compatible
            base_url: {mock.base_url}
            api_key: {UPSTREAM_KEY}
            health_check: false
            circuit_breaker: false
          closed:
            provider: openai-compatible
            base_url: http://127.0.0.1:{refused_port}/v1
            health_check: false
            circuit_breaker: false
            timeouts: {{ connect: 5s, first_byte: 20s }}
          slowup:
            provider: openai-compatible
            base_url: {mock.base_url}
            health_check: false
            circuit_breaker: false
            timeouts: {{ first_byte: {FIRST_BYTE_TIMEOUT_MS}ms }}
          keyless:
            provider: openai-compatible
            base_url: {mock.base_url}
            api_key: ${{{UNSET_VAR}}}
            health_check: false
          gem:
            provider: gemini
            base_url: http://127.0.0.1:{mock.port}
            api_key: {GEMINI_KEY}
            circuit_breaker: false
          br:
            provider: bedrock
            base_url: http://127.0.0.1:{mock.port}
            bedrock: {bedrock_keys}
            circuit_breaker: false
          builtin:
            provider: mock
        models:
          claude:
            targets: [{{ upstream: claude-up, model: {ANTHROPIC_MODEL} }}]
          claude-overloaded:
            targets: [{{ upstream: claude-up, model: {ANTHROPIC_OVERLOADED} }}]
            fallbacks: [gpt]
          claude-overloaded-alone:
            targets: [{{ upstream: claude-up, model: {ANTHROPIC_OVERLOADED} }}]
            retry: {{ attempts: 0 }}
          claude-overloaded-retried:  # the router's own retry, then the 529
            targets: [{{ upstream: claude-up, model: {ANTHROPIC_OVERLOADED} }}]
          claude-cut:
            targets: [{{ upstream: claude-up, model: {ANTHROPIC_ERROR_MID_STREAM} }}]
          claude-hang:
            targets: [{{ upstream: claude-up, model: {ANTHROPIC_HANG} }}]
          claude-cut-stream:
            targets: [{{ upstream: claude-up, model: {ANTHROPIC_CUT_STREAM} }}]
          claude-rate-limited:
            targets: [{{ upstream: claude-up, model: {ANTHROPIC_RATE_LIMITED} }}]
          claude-stream-overloaded:  # fails before its first token
            targets: [{{ upstream: claude-up, model: {ANTHROPIC_STREAM_OVERLOADED} }}]
            fallbacks: [gpt]
          claude-cut-early:
            targets: [{{ upstream: claude-up, model: {ANTHROPIC_CUT_EARLY} }}]
            fallbacks: [gpt]
          gpt:
            targets: [{{ upstream: mockup, model: upstream-gpt }}]
          gpt-429:
            targets: [{{ upstream: mockup, model: fail-429 }}]
            retry: {{ attempts: 0 }}
          gpt-429-retried:
            targets: [{{ upstream: mockup, model: fail-429 }}]
          gpt-500:
            targets: [{{ upstream: mockup, model: fail-500 }}]
            retry: {{ attempts: 0 }}
          gpt-400:
            targets: [{{ upstream: mockup, model: fail-400 }}]
          gpt-cut:
            targets: [{{ upstream: mockup, model: cut-stream }}]
          gpt-hang:
            targets: [{{ upstream: mockup, model: {CHAT_HANG} }}]
          gpt-reasoner:
            targets: [{{ upstream: mockup, model: {CHAT_REASONER} }}]
          gpt-error-mid-stream:
            targets: [{{ upstream: mockup, model: {CHAT_ERROR_MID_STREAM} }}]
          gpt-no-done:
            targets: [{{ upstream: mockup, model: {CHAT_NO_DONE} }}]
          gpt-filtered:
            targets: [{{ upstream: mockup, model: {CHAT_FILTERED} }}]
          gpt-terse-stream:
            targets: [{{ upstream: mockup, model: {CHAT_TERSE_STREAM} }}]
          gpt-refuser:
            targets: [{{ upstream: mockup, model: {CHAT_REFUSER} }}]
          gpt-calls-at-index-zero:
            targets: [{{ upstream: mockup, model: {CHAT_CALLS_AT_INDEX_ZERO} }}]
          unreachable:
            targets: [{{ upstream: closed }}]
            retry: {{ attempts: 0 }}
          slow:
            targets: [{{ upstream: slowup }}]
            retry: {{ attempts: 0 }}
          needs-key:
            targets: [{{ upstream: keyless }}]
          gemini:
            targets: [{{ upstream: gem, model: {GEMINI_MODEL} }}]
          gemini-3:
            targets: [{{ upstream: gem, model: {GEMINI_3_MODEL} }}]
          bedrock:
            targets: [{{ upstream: br, model: {json.dumps(BEDROCK_CLAUDE)} }}]
          demo:
            targets: [{{ upstream: builtin }}]
          gemini-error-mid-stream:
            targets: [{{ upstream: gem, model: {GEMINI_ERROR_MID_STREAM} }}]
          gemini-quota:
            targets: [{{ upstream: gem, model: {GEMINI_QUOTA} }}]
            retry: {{ attempts: 0 }}
          bedrock-stream-exception:
            targets: [{{ upstream: br, model: {json.dumps(BEDROCK_STREAM_EXCEPTION)} }}]
          bedrock-throttled:
            targets: [{{ upstream: br, model: {json.dumps(BEDROCK_THROTTLED)} }}]
            retry: {{ attempts: 0 }}
          bedrock-stream-throttled:  # a throttlingException frame before any content
            targets: [{{ upstream: br, model: {json.dumps(BEDROCK_STREAM_THROTTLED)} }}]
            retry: {{ attempts: 0 }}
        """)


@pytest.fixture(scope="session")
def door_router(mock_server: MockUpstream, refused_port: int,
                tmp_path_factory: pytest.TempPathFactory) -> Iterator[Router]:
    """A router whose clients speak Anthropic's Messages API (router keys on)."""
    r = _start("door", door_config(mock_server, refused_port), tmp_path_factory)
    yield r
    _finish(r)


def make_door_client(router: Router, *, sent: "Sent | None" = None,
                     **options: Any) -> anthropic.Anthropic:
    """An Anthropic SDK client on `router`: `base_url` without `/v1` (the SDK
    appends `/v1/messages`), no SDK retries unless `options` say so.
    `options` may replace `api_key` (or give `auth_token` instead); `sent`
    collects every request the SDK sends, as it sent it."""
    if sent is not None:
        options["http_client"] = anthropic.DefaultHttpxClient(
            event_hooks={"request": [sent.requests.append]})
    if "auth_token" not in options:
        options.setdefault("api_key", ROUTER_KEY)
    options.setdefault("max_retries", 0)
    options.setdefault("timeout", CLIENT_TIMEOUT_S)
    return anthropic.Anthropic(base_url=router.url, **options)


@pytest.fixture
def door_client(door_router: Router) -> Iterator[anthropic.Anthropic]:
    """An Anthropic SDK client on the Messages-door router, with its key."""
    c = make_door_client(door_router)
    yield c
    c.close()


@dataclass
class Sent:
    """Every HTTP request an SDK client sent (its retries included)."""

    requests: list[Any] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.requests)


def make_client(base_url: str, *, api_key: str = CLIENT_KEY, max_retries: int = 0,
                sent: Sent | None = None) -> openai.OpenAI:
    hooks = {"request": [sent.requests.append]} if sent is not None else {}
    return openai.OpenAI(
        base_url=base_url,
        api_key=api_key,
        max_retries=max_retries,
        timeout=CLIENT_TIMEOUT_S,
        http_client=openai.DefaultHttpxClient(event_hooks=hooks),
    )


@pytest.fixture
def client(router: Router) -> Iterator[openai.OpenAI]:
    """An SDK client on the main router; no SDK retries unless a test asks."""
    c = make_client(router.base_url)
    yield c
    c.close()


@pytest.fixture
def claude_client(anthropic_router: Router) -> Iterator[openai.OpenAI]:
    """An SDK client on the Anthropic router; no SDK retries."""
    c = make_client(anthropic_router.base_url)
    yield c
    c.close()


@pytest.fixture
def gemini_client(gemini_router: Router) -> Iterator[openai.OpenAI]:
    """An SDK client on the Gemini router; no SDK retries."""
    c = make_client(gemini_router.base_url)
    yield c
    c.close()


@pytest.fixture
def bedrock_client(bedrock_router: Router) -> Iterator[openai.OpenAI]:
    """An SDK client on the Bedrock router; no SDK retries."""
    c = make_client(bedrock_router.base_url)
    yield c
    c.close()
