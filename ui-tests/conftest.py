"""Fixtures for the chat app's UI tests: the real `switchyard` binary with a
small model table, the app under Streamlit's AppTest, and (for the browser
tests) `streamlit run` plus Debian's Chromium driven by Playwright.

The binary is `$SWITCHYARD_BIN`, else `target/debug/switchyard` under the
repository root (`./scripts/test-ui.sh` builds it first). The browser is
`$CHROMIUM` (default /usr/bin/chromium); Playwright never downloads one.
Everything listens on 127.0.0.1; every wait has a deadline.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from cut_upstream import CutUpstream

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

#: Deadline for the router to answer `GET /health` after it is started.
ROUTER_STARTUP_S = 15.0
#: Deadline for `streamlit run` to answer `GET /_stcore/health`.
STREAMLIT_STARTUP_S = 60.0
#: Deadline for a process to exit after SIGTERM before it is killed.
SHUTDOWN_S = 10.0
#: Deadline for one AppTest script run (a whole chat turn streams in one).
APPTEST_RUN_S = 30.0

#: The key `auth_router` wants; the app sends SWITCHYARD_API_KEY=sk-ui-tests.
ROUTER_KEY = "sk-ui-tests-router-key"

#: The models of the test router, in config order (`GET /v1/models` keeps it).
MODELS = ["demo", "demo-2", "broken", "cut", "failover", "slow"]

def mock_reply(model: str, prompt: str) -> str:
    """What the router's built-in mock answers (docs/config.md, `mock.reply`)."""
    return (f"Hello from Switchyard! I am `{model}`, the built-in mock model, so no LLM "
            f'is running behind me. You said: "{prompt}"')


# Loopback must never go through a proxy, whatever the environment says.
for _var in ("NO_PROXY", "no_proxy"):
    os.environ[_var] = ",".join(filter(None, [os.environ.get(_var), "127.0.0.1", "localhost"]))


def free_port() -> int:
    """A port nobody listened on a moment ago (the caller binds it next)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_ok(url: str) -> bool:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=1) as response:
            return response.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return False


def wait_until(check: Callable[[], bool], deadline_s: float, alive: Callable[[], bool]) -> bool:
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

    def __init__(self, name: str, workdir: Path, health_path: str,
                 startup_s: float) -> None:
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

    def start(self) -> "Service":
        # A port picked free can be taken before the child binds it: try again then.
        for _ in range(3):
            self.port = free_port()
            with open(self.log_path, "ab") as log:
                self.process = subprocess.Popen(
                    self.command(self.port), stdin=subprocess.DEVNULL, stdout=log,
                    stderr=subprocess.STDOUT, env=self.env(), cwd=self.workdir)
            if wait_until(lambda: http_ok(self.url + self.health_path), self.startup_s,
                          lambda: self.process is not None and self.process.poll() is None):
                return self
            self.stop()
            if "in use" not in self.log().lower():
                break
        raise RuntimeError(f"{self.name} did not answer GET {self.health_path} within "
                           f"{self.startup_s}s; its output:\n{self.log()}")

    def stop(self) -> None:
        stop_process(self.process)


class Router(Service):
    """The real `switchyard` binary serving `config`."""

    def __init__(self, name: str, config: str, workdir: Path) -> None:
        super().__init__(name, workdir, "/health", ROUTER_STARTUP_S)
        self.config_path = workdir / "router.yaml"
        self.config_path.write_text(config)
        configured = Path(os.environ.get("SWITCHYARD_BIN", "target/debug/switchyard"))
        self.binary = configured if configured.is_absolute() else REPO_ROOT / configured
        if not self.binary.is_file():
            pytest.exit(f"switchyard binary not found at {self.binary}: run `cargo build` "
                        "or set SWITCHYARD_BIN (./scripts/test-ui.sh does both)", returncode=2)

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    def command(self, port: int) -> list[str]:
        return [str(self.binary), "--config", str(self.config_path),
                "--listen", f"127.0.0.1:{port}"]

    def env(self) -> dict[str, str]:
        return {**os.environ, "NO_COLOR": "1", "RUST_LOG": os.environ.get("RUST_LOG", "info")}


class StreamlitApp(Service):
    """`streamlit run examples/streamlit/app.py`, pointed at `base_url`."""

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
                "SWITCHYARD_API_KEY": "sk-ui-tests"}


_SERVICES: list[Service] = []


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Iterator[None]:
    """Attaches the tail of each child process's output to a failing test's report."""
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for service in _SERVICES:
            tail = "\n".join(service.log().splitlines()[-40:])
            report.sections.append((f"{service.name} output, last lines", tail))


def _started(service: Service) -> Service:
    _SERVICES.append(service)
    return service.start()


def _finish(service: Service) -> None:
    died = service.process is not None and service.process.poll() is not None
    service.stop()
    if died:
        pytest.fail(f"{service.name} exited during the tests; its output:\n{service.log()}",
                    pytrace=False)


# -- the router ----------------------------------------------------------------


@pytest.fixture(scope="session")
def refused_port() -> Iterator[int]:
    """A loopback port that refuses connections: bound (so no one else takes
    it) but never listening, so a connect gets RST at once."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    yield s.getsockname()[1]
    s.close()


@pytest.fixture(scope="session")
def cut_upstream() -> Iterator[CutUpstream]:
    upstream = CutUpstream().start()
    yield upstream
    upstream.stop()


def router_config(refused_port: int, cut_url: str) -> str:
    return textwrap.dedent(f"""\
        # Written by ui-tests/conftest.py.
        upstreams:
          mock:
            provider: mock
            mock: {{ token_delay: 30ms }}   # slow enough to see the answer stream in
          mock-2:
            provider: mock
            mock: {{ token_delay: 20ms }}
          mock-slow:
            provider: mock
            mock: {{ token_delay: 150ms }}  # a few seconds an answer
          closed:                           # refuses every connection
            provider: openai-compatible
            base_url: http://127.0.0.1:{refused_port}/v1
            health_check: false
            circuit_breaker: false
          cut:                              # breaks every stream off after two chunks
            provider: openai-compatible
            base_url: {cut_url}
            health_check: false
            circuit_breaker: false
        models:
          demo:
            targets: [{{ upstream: mock }}]
          demo-2:
            targets: [{{ upstream: mock-2 }}]
          broken:
            targets: [{{ upstream: closed }}]
          cut:
            targets: [{{ upstream: cut }}]
          failover:                         # its own target is down: demo-2 answers
            targets: [{{ upstream: closed }}]
            fallbacks: [demo-2]
          slow:
            targets: [{{ upstream: mock-slow }}]
        """)


@pytest.fixture(scope="session")
def router(refused_port: int, cut_upstream: CutUpstream,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[Router]:
    """The router every test talks to (unless it wants one that is down)."""
    config = router_config(refused_port, cut_upstream.base_url)
    r = _started(Router("switchyard", config, tmp_path_factory.mktemp("router")))
    yield r  # type: ignore[misc]
    _finish(r)


@pytest.fixture
def auth_router(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Router]:
    """A router that wants `ROUTER_KEY`, which the app does not send."""
    config = textwrap.dedent(f"""\
        server:
          auth:
            keys: [{ROUTER_KEY}]
        upstreams:
          mock:
            provider: mock
        models:
          demo:
            targets: [{{ upstream: mock }}]
        """)
    r = Router("switchyard-auth", config, tmp_path_factory.mktemp("auth"))
    _SERVICES.append(r)
    r.start()
    yield r
    r.stop()
    _SERVICES.remove(r)


@pytest.fixture
def spare_router(refused_port: int, cut_upstream: CutUpstream,
                 tmp_path_factory: pytest.TempPathFactory) -> Iterator[Router]:
    """A router of the test's own, which the test may stop."""
    config = router_config(refused_port, cut_upstream.base_url)
    r = Router("switchyard-spare", config, tmp_path_factory.mktemp("spare"))
    _SERVICES.append(r)
    r.start()
    yield r
    r.stop()
    _SERVICES.remove(r)


# -- the app under AppTest -----------------------------------------------------


@pytest.fixture
def make_app(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], Any]:
    """`make_app(base_url)`: the app under AppTest, pointed at `base_url`,
    after its first run."""
    from streamlit.testing.v1 import AppTest

    def make(base_url: str) -> AppTest:
        # The script reads its settings from the environment on every run.
        monkeypatch.setenv("SWITCHYARD_BASE_URL", base_url)
        monkeypatch.setenv("SWITCHYARD_API_KEY", "sk-ui-tests")
        monkeypatch.delenv("SWITCHYARD_MODEL", raising=False)
        return AppTest.from_file(str(APP), default_timeout=APPTEST_RUN_S).run()

    return make


@pytest.fixture
def app(router: Router, make_app: Callable[[str], Any]) -> Any:
    return make_app(router.base_url)


# -- the browser -----------------------------------------------------------------


@pytest.fixture(scope="session")
def streamlit_app(router: Router, tmp_path_factory: pytest.TempPathFactory) -> Iterator[StreamlitApp]:
    s = StreamlitApp(router.base_url, tmp_path_factory.mktemp("streamlit"))
    _started(s)
    yield s
    _finish(s)


@pytest.fixture(scope="session")
def browser_context(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Debian's Chromium under Playwright, headless, with a fresh profile."""
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"no Chromium at {CHROMIUM}: `apt-get install chromium` "
                    "(./scripts/test-ui.sh does), or set CHROMIUM", pytrace=False)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 800}, timeout=60_000)
        context.set_default_timeout(20_000)  # every Playwright wait has this deadline
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
