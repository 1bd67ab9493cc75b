"""Fixtures of the real-model tier: real `llama-server` processes (llama.cpp)
running a real small model, the real `switchyard` binary in front of them,
OpenAI SDK clients, and (for the browser test) `streamlit run` with the
chat app plus Debian's Chromium driven by Playwright.

./scripts/test-real.sh provides what the fixtures need, as environment:
`LLAMA_SERVER` (the llama-server binary), `REAL_MODEL` (the .gguf file),
`SWITCHYARD_BIN` (default target/debug/switchyard), `CHROMIUM` (default
/usr/bin/chromium). Everything listens on 127.0.0.1 on free ports; every
wait has a deadline; every process started here is stopped at teardown.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable, Iterator

import openai
import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
APP = REPO_ROOT / "examples" / "streamlit" / "app.py"
ARTIFACTS = REPO_ROOT / "artifacts"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
#: The flags this machine's Chromium needs: no sandbox as root, no GPU, and
#: none of the background traffic that the closed network would refuse.
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]

#: The model name clients ask the router for.
MODEL = "gemma"
#: llama-server's context, split between its `-np` slots (2048 tokens each).
LLAMA_CONTEXT = 4096
LLAMA_SLOTS = 2
#: Threads per llama-server: two servers share the machine's two cores.
LLAMA_THREADS = 1
#: Most tokens one answer may have (`-n`), whatever the request asks: the
#: base model rarely stops by itself, and the chat app sends no max_tokens.
LLAMA_MAX_TOKENS = 256

#: Deadline for llama-server to load the model and answer `GET /health` 200.
LLAMA_STARTUP_S = 90.0
#: Deadline for the router to answer `GET /health`.
ROUTER_STARTUP_S = 15.0
#: Deadline for `streamlit run` to answer `GET /_stcore/health`.
STREAMLIT_STARTUP_S = 60.0
#: Deadline for a process to exit after SIGTERM before it is killed.
SHUTDOWN_S = 10.0
#: Per-request deadline of the SDK clients (a failing test, never a measurement).
CLIENT_TIMEOUT_S = 120.0

# Loopback must never go through a proxy, whatever the environment says.
for _var in ("NO_PROXY", "no_proxy"):
    os.environ[_var] = ",".join(filter(None, [os.environ.get(_var), "127.0.0.1", "localhost"]))


def _required_file(var: str, default: str | None = None) -> Path:
    value = os.environ.get(var, default or "")
    path = Path(value) if value else None
    if path is not None and not path.is_absolute():
        path = REPO_ROOT / path
    if path is None or not path.is_file():
        pytest.exit(f"{var}={value!r} is not a file: run the tier through "
                    "./scripts/test-real.sh, which installs and sets it", returncode=2)
    return path


def free_port() -> int:
    """A port nobody listened on a moment ago (the caller binds it next)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_ok(url: str) -> bool:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return False


def wait_until(check: Callable[[], bool], deadline_s: float,
               alive: Callable[[], bool] = lambda: True) -> bool:
    """Polls `check` until it holds (True), `alive` fails or the deadline passes (False)."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if check():
            return True
        if not alive():
            return False
        time.sleep(0.05)  # poll interval, bounded by the deadline
    return False


def stop_process(process: subprocess.Popen[bytes] | None) -> None:
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=SHUTDOWN_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=SHUTDOWN_S)


class Service:
    """A child process on a free loopback port, healthy when `health_path`
    answers 200; its output goes to a log file shown when a test fails."""

    def __init__(self, name: str, workdir: Path, health_path: str, startup_s: float) -> None:
        self.name = name
        self.workdir = workdir
        self.health_path = health_path
        self.startup_s = startup_s
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / f"{name}.log"
        workdir.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def command(self, port: int) -> list[str]:
        raise NotImplementedError

    def env(self) -> dict[str, str]:
        return dict(os.environ)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> "Service":
        # A port picked free can be taken before the child binds it: try again then.
        for _ in range(3):
            self.port = free_port()
            with open(self.log_path, "ab") as log:
                self.process = subprocess.Popen(
                    self.command(self.port), stdin=subprocess.DEVNULL, stdout=log,
                    stderr=subprocess.STDOUT, env=self.env(), cwd=self.workdir)
            if wait_until(lambda: http_ok(self.url + self.health_path), self.startup_s,
                          self.alive):
                return self
            self.stop()
            if "in use" not in self.log().lower():
                break
        raise RuntimeError(f"{self.name} did not answer GET {self.health_path} within "
                           f"{self.startup_s}s; its output:\n{self.log()}")

    def kill(self) -> None:
        """SIGKILL, as a crash: no goodbye on its sockets but the kernel's."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=SHUTDOWN_S)

    def stop(self) -> None:
        stop_process(self.process)


class LlamaServer(Service):
    """`llama-server` (llama.cpp) serving the model with its chat template
    (`--jinja`), healthy once the model is loaded."""

    def __init__(self, name: str, workdir: Path) -> None:
        super().__init__(name, workdir, "/health", LLAMA_STARTUP_S)
        self.binary = _required_file("LLAMA_SERVER")
        self.model = _required_file("REAL_MODEL")

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    def command(self, port: int) -> list[str]:
        return [str(self.binary), "-m", str(self.model), "--jinja",
                "--host", "127.0.0.1", "--port", str(port),
                "-c", str(LLAMA_CONTEXT), "-np", str(LLAMA_SLOTS), "-t", str(LLAMA_THREADS),
                "-n", str(LLAMA_MAX_TOKENS),
                "--no-webui"]


class Router(Service):
    """The real `switchyard` binary serving `config`."""

    def __init__(self, name: str, config: str, workdir: Path) -> None:
        super().__init__(name, workdir, "/health", ROUTER_STARTUP_S)
        self.config_path = workdir / "router.yaml"
        self.config_path.write_text(config)
        self.binary = _required_file("SWITCHYARD_BIN", "target/debug/switchyard")

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    def command(self, port: int) -> list[str]:
        return [str(self.binary), "--config", str(self.config_path),
                "--listen", f"127.0.0.1:{port}"]

    def env(self) -> dict[str, str]:
        return {**os.environ, "NO_COLOR": "1", "RUST_LOG": os.environ.get("RUST_LOG", "info")}

    def access_lines(self) -> list[str]:
        return [line for line in self.log().splitlines() if "switchyard::access" in line
                or re.search(r"\brequest_id=", line)]


class StreamlitApp(Service):
    """`streamlit run examples/streamlit/app.py`, pointed at the router."""

    def __init__(self, base_url: str, workdir: Path) -> None:
        super().__init__("streamlit", workdir, "/_stcore/health", STREAMLIT_STARTUP_S)
        self.base_url = base_url

    def command(self, port: int) -> list[str]:
        return [sys.executable, "-m", "streamlit", "run", str(APP),
                "--server.port", str(port), "--server.address", "127.0.0.1",
                "--server.headless", "true", "--server.fileWatcherType", "none",
                "--browser.gatherUsageStats", "false"]

    def env(self) -> dict[str, str]:
        return {**os.environ, "SWITCHYARD_BASE_URL": self.base_url,
                "SWITCHYARD_API_KEY": "sk-real-tests", "SWITCHYARD_MODEL": MODEL}


_SERVICES: list[Service] = []


def started(service: Service) -> Service:
    _SERVICES.append(service)
    return service.start()


def finish(service: Service) -> None:
    service.stop()
    if service in _SERVICES:
        _SERVICES.remove(service)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Iterator[None]:
    """Attaches the tail of every running service's output to a failing test."""
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for service in _SERVICES:
            tail = "\n".join(service.log().splitlines()[-60:])
            report.sections.append((f"{service.name} output, last lines", tail))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Whatever a failed fixture left running is stopped here."""
    for service in list(_SERVICES):
        service.stop()


# -- the router's configuration ------------------------------------------------


def router_config(a: str, b: str, *, resume: bool = False) -> str:
    """Two llama.cpp upstreams, `llama-a` (tried first) and `llama-b`. With
    `resume`, the model continues a stream that breaks after its first
    token on the other server, which continues a trailing assistant message
    (`prefill: assistant`, measured in docs/real-model.md)."""
    lines = ["# Written by real-tests/conftest.py.", "upstreams:"]
    for name, url in (("llama-a", a), ("llama-b", b)):
        lines += [f"  {name}:",
                  "    provider: openai-compatible",
                  f"    base_url: {url}",
                  "    health_check: false",
                  "    circuit_breaker: false"]
        if resume:
            lines.append("    prefill: assistant")
    lines += ["models:",
              f"  {MODEL}:",
              "    strategy: priority",
              "    targets: [{ upstream: llama-a }, { upstream: llama-b }]",
              "    retry: { attempts: 0 }"]
    if resume:
        lines.append("    resume: { max_resumes: 1 }")
    return "\n".join(lines) + "\n"


def check_config(config: str, workdir: Path) -> subprocess.CompletedProcess[str]:
    """`switchyard check` on `config`: what the router would say at start."""
    path = workdir / "check.yaml"
    path.write_text(config)
    binary = _required_file("SWITCHYARD_BIN", "target/debug/switchyard")
    return subprocess.run([str(binary), "check", str(path)], capture_output=True, text=True,
                          timeout=30, env={**os.environ, "NO_COLOR": "1"})


# -- fixtures ------------------------------------------------------------------


class Stack:
    """Two llama-servers and the router in front of them."""

    def __init__(self, a: LlamaServer, b: LlamaServer, router: Router) -> None:
        self.a, self.b, self.router = a, b, router

    def client(self) -> openai.OpenAI:
        return openai.OpenAI(base_url=self.router.base_url, api_key="sk-real-tests",
                             max_retries=0, timeout=CLIENT_TIMEOUT_S)


def make_stack(workdir: Path, *, resume: bool = False) -> Stack:
    a = started(LlamaServer("llama-a", workdir))
    b = started(LlamaServer("llama-b", workdir))
    assert isinstance(a, LlamaServer) and isinstance(b, LlamaServer)
    router = started(Router("switchyard", router_config(a.base_url, b.base_url, resume=resume),
                            workdir))
    assert isinstance(router, Router)
    return Stack(a, b, router)


def stop_stack(stack: Stack) -> None:
    died = not stack.router.alive()
    for service in (stack.router, stack.a, stack.b):
        finish(service)
    if died:
        pytest.fail(f"switchyard exited during the test; its output:\n{stack.router.log()}",
                    pytrace=False)


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The shared stack, for tests that leave both servers running."""
    s = make_stack(tmp_path_factory.mktemp("stack"))
    yield s
    stop_stack(s)


@pytest.fixture
def own_stack(tmp_path: Path) -> Iterator[Stack]:
    """A stack of the test's own, whose servers the test may kill."""
    s = make_stack(tmp_path)
    yield s
    stop_stack(s)


@pytest.fixture
def resume_stack(tmp_path: Path) -> Iterator[Stack]:
    """A stack of the test's own with `resume` on the model."""
    s = make_stack(tmp_path, resume=True)
    yield s
    stop_stack(s)


@pytest.fixture
def client(stack: Stack) -> Iterator[openai.OpenAI]:
    c = stack.client()
    yield c
    c.close()


@pytest.fixture(scope="session")
def streamlit_app(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[StreamlitApp]:
    s = started(StreamlitApp(stack.router.base_url, tmp_path_factory.mktemp("streamlit")))
    assert isinstance(s, StreamlitApp)
    yield s
    finish(s)


@pytest.fixture(scope="session")
def browser_context(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Debian's Chromium under Playwright, headless, with a fresh profile."""
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"no Chromium at {CHROMIUM}: `apt-get install chromium` "
                    "(./scripts/test-real.sh does), or set CHROMIUM", pytrace=False)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 800}, timeout=60_000)
        context.set_default_timeout(60_000)  # every Playwright wait has this deadline
        yield context
        context.close()


@pytest.fixture
def page(browser_context: Any) -> Iterator[Any]:
    p = browser_context.new_page()
    yield p
    p.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
