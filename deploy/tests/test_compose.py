"""Checks of the container packaging that need no Docker engine.

docker-compose.yml and the GPU override docker-compose.gpu.yml against the
Compose Specification schema, the services against each other in each way the
stack is documented to run (VARIANTS), deploy/router.compose.yaml against
`switchyard check` and the services it addresses, the Dockerfile against the
compose file, .dockerignore against what the build reads, and the documented
commands against VARIANTS. When a Docker Compose v2 CLI is available
(DOCKER_COMPOSE, `docker compose`, or a v2 `docker-compose`), `config` is run
for each variant too: it needs no engine.

Run through deploy/tests/run.sh, which makes the virtualenv and fetches the
Compose CLI; or by hand with SWITCHYARD_BIN (default target/debug/switchyard)
and optionally DOCKER_COMPOSE set.
"""

from __future__ import annotations

import copy
import functools
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
GPU_FILE = ROOT / "docker-compose.gpu.yml"
SCHEMA_FILE = ROOT / "deploy" / "compose-spec.schema.json"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
CONFIG_IN_IMAGE = "/etc/switchyard/router.yaml"

OLLAMA = {"ollama-qwen", "ollama-phi"}
EVERYTHING = OLLAMA | {"ollama-pull", "switchyard", "chat"}


@dataclass(frozen=True)
class Variant:
    """One documented way to run the stack: `docker compose [-f ...] up --build [SERVICE...]`."""

    id: str
    files: tuple[Path, ...]
    services: tuple[str, ...]  # named on the command line; () for all
    started: frozenset[str]  # what Compose then starts
    published: frozenset[int]  # the host ports they publish

    @property
    def command(self) -> str:
        files = [f"-f {f.name}" for f in self.files] if self.files != (COMPOSE_FILE,) else []
        return " ".join(["docker compose", *files, "up --build", *self.services])


VARIANTS = [
    # Everything on CPU.
    Variant("default", (COMPOSE_FILE,), (), frozenset(EVERYTHING), frozenset({8000, 8501, 11435, 11436})),
    # The same, with the Ollama servers on NVIDIA GPUs.
    Variant("gpu", (COMPOSE_FILE, GPU_FILE), (), frozenset(EVERYTHING), frozenset({8000, 8501, 11435, 11436})),
    # The router and the chat app only: no Ollama.
    Variant("router-chat", (COMPOSE_FILE,), ("switchyard", "chat"), frozenset({"switchyard", "chat"}), frozenset({8000, 8501})),
]
WITH_OLLAMA = [v for v in VARIANTS if OLLAMA <= v.started]


def variant_params(variants=VARIANTS):
    return pytest.mark.parametrize("variant", variants, ids=lambda v: v.id)


# -- helpers ------------------------------------------------------------------


def load_yaml(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def merge(base, override):
    """Compose's merge of an override file, for what ours use: mappings merge
    key by key, anything else in the override replaces the base's value."""
    if isinstance(base, dict) and isinstance(override, dict):
        out = dict(base)
        for key, value in override.items():
            out[key] = merge(base[key], value) if key in base else copy.deepcopy(value)
        return out
    return copy.deepcopy(override)


def load_model(files: tuple[Path, ...]) -> dict:
    model: dict = {}
    for path in files:
        model = merge(model, load_yaml(path))
    return model


@pytest.fixture(scope="module")
def compose() -> dict:
    return load_yaml(COMPOSE_FILE)


@pytest.fixture(scope="module")
def router_config(compose) -> tuple[Path, dict]:
    path = mounted_config_source(compose)
    return path, yaml.safe_load(path.read_text())


def switchyard_bin() -> Path:
    path = Path(os.environ.get("SWITCHYARD_BIN", ROOT / "target" / "debug" / "switchyard"))
    if not path.is_absolute():
        path = ROOT / path
    if not path.exists():
        pytest.fail(f"{path} does not exist: build it (cargo build) or set SWITCHYARD_BIN")
    return path


def depends_on(svc: dict) -> dict[str, dict]:
    deps = svc.get("depends_on") or {}
    if isinstance(deps, list):  # short syntax
        return {name: {"condition": "service_started"} for name in deps}
    return deps


def started_services(model: dict, named: tuple[str, ...] = ()) -> dict[str, dict]:
    """What `docker compose up [SERVICE...]` starts (no --profile, no --no-deps):
    with no names, every service without `profiles`; with names, those and
    everything they depend on, transitively -- `required: false` or not."""
    services = model["services"]
    if not named:
        return {name: svc for name, svc in services.items() if not svc.get("profiles")}
    todo, seen = list(named), {}
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen[name] = services[name]
        todo.extend(dep for dep in depends_on(services[name]) if dep in services)
    return seen


def port_mappings(svc: dict) -> list[tuple[int | None, int]]:
    """(published, container) pairs of a service's `ports`, short or long syntax."""
    out = []
    for port in svc.get("ports") or []:
        if isinstance(port, dict):
            published = port.get("published")
            out.append((int(published) if published is not None else None, int(port["target"])))
            continue
        spec = str(port).split("/")[0]
        parts = spec.split(":")
        container = int(parts[-1])
        published = int(parts[-2]) if len(parts) >= 2 and parts[-2] else None
        out.append((published, container))
    return out


def environment(svc: dict) -> dict[str, str | None]:
    env = svc.get("environment") or {}
    if isinstance(env, list):
        return {
            item.split("=", 1)[0]: (item.split("=", 1)[1] if "=" in item else None)
            for item in env
        }
    return {k: (None if v is None else str(v)) for k, v in env.items()}


def network_names(services: dict[str, dict]) -> dict[str, str]:
    """Each name that resolves on the default network -> the service behind it."""
    names: dict[str, str] = {}
    for name, svc in services.items():
        for alias in [name] + aliases(svc):
            assert alias not in names, f"{alias!r} names both {names[alias]!r} and {name!r}"
            names[alias] = name
    return names


def aliases(svc: dict) -> list[str]:
    networks = svc.get("networks") or {}
    if isinstance(networks, list):
        return []
    return list(((networks.get("default") or {}).get("aliases")) or [])


def mounted_config_source(compose: dict) -> Path:
    for volume in compose["services"]["switchyard"].get("volumes") or []:
        if isinstance(volume, dict):
            source, target = volume.get("source"), volume.get("target")
        else:
            source, target = str(volume).split(":")[:2]
        if target == CONFIG_IN_IMAGE:
            return (ROOT / source).resolve()
    pytest.fail(f"the switchyard service mounts nothing at {CONFIG_IN_IMAGE}")


def final_stage(dockerfile: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile's last stage, continuation lines joined."""
    text = re.sub(r"\\\n", " ", dockerfile)
    instructions = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        instructions.append((word.upper(), rest.strip()))
    last_from = max(i for i, (word, _) in enumerate(instructions) if word == "FROM")
    return instructions[last_from:]


def instruction(stage: list[tuple[str, str]], word: str) -> list[str]:
    return [rest for w, rest in stage if w == word]


def json_form(args: str) -> list[str]:
    value = json.loads(args)
    assert isinstance(value, list), f"{args!r} is not in exec (JSON array) form"
    return value


def schema_errors(document: dict) -> list[str]:
    validator = jsonschema.Draft7Validator(json.loads(SCHEMA_FILE.read_text()))
    errors = sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
    return [f"{'.'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}" for e in errors]


def gpu_devices(svc: dict) -> list[dict]:
    return (((svc.get("deploy") or {}).get("resources") or {}).get("reservations") or {}).get("devices") or []


# -- the schema and the compose files -----------------------------------------


def test_vendored_schema_is_the_compose_specification():
    schema = json.loads(SCHEMA_FILE.read_text())
    assert schema["title"] == "Compose Specification"
    jsonschema.Draft7Validator.check_schema(schema)
    # Recent enough for what the compose file uses.
    depends = schema["definitions"]["service"]["properties"]["depends_on"]["oneOf"][1]
    assert "required" in depends["patternProperties"]["^[a-zA-Z0-9._-]+$"]["properties"]


@pytest.mark.parametrize("path", [COMPOSE_FILE, GPU_FILE], ids=lambda p: p.name)
def test_compose_file_matches_the_schema(path):
    """Compose validates each file on its own before it merges them."""
    errors = schema_errors(load_yaml(path))
    assert not errors, "\n".join(errors)


@variant_params([v for v in VARIANTS if len(v.files) > 1])
def test_merged_files_match_the_schema(variant):
    errors = schema_errors(load_model(variant.files))
    assert not errors, "\n".join(errors)


def test_the_schema_does_reject_mistakes(compose):
    """The validation above is not vacuous: typical slips fail it."""
    broken = copy.deepcopy(compose)
    broken["services"]["switchyard"]["healthchek"] = {"test": ["CMD", "true"]}
    assert schema_errors(broken)
    broken = copy.deepcopy(compose)
    broken["services"]["chat"]["depends_on"]["switchyard"]["condition"] = "service_ready"
    assert schema_errors(broken)
    gpu = load_yaml(GPU_FILE)
    broken = copy.deepcopy(gpu)
    resources = broken["services"]["ollama-qwen"]["deploy"]["resources"]
    resources["reservation"] = resources.pop("reservations")
    assert schema_errors(broken)
    broken = copy.deepcopy(gpu)
    broken["services"]["ollama-phi"]["deploy"]["resources"]["reservations"]["devices"][0]["capabilities"] = "gpu"
    assert schema_errors(broken)


def test_plain_up_starts_everything(compose):
    """No profiles: `docker compose up` is the whole reference setup."""
    assert set(compose["services"]) == EVERYTHING
    profiled = [name for name, svc in compose["services"].items() if "profiles" in svc]
    assert not profiled, f"services under a profile, not started by plain `up`: {profiled}"


@variant_params()
def test_variant_starts_what_it_should(variant):
    model = load_model(variant.files)
    assert set(started_services(model, variant.services)) == variant.started


@variant_params()
def test_dependencies_exist(variant):
    model = load_model(variant.files)
    services = model["services"]
    started = started_services(model, variant.services)
    for name, svc in services.items():
        for dep, spec in depends_on(svc).items():
            assert dep in services, f"{name} depends on undefined service {dep!r}"
            if name in started:
                assert dep in started, f"{variant.command}: {name} depends on {dep}, which is not started"
            condition = spec.get("condition", "service_started")
            if condition == "service_healthy":
                assert services[dep].get("healthcheck"), f"{name} waits for {dep} to be healthy, which has no healthcheck"


@variant_params()
def test_published_ports(variant):
    published = [
        host
        for svc in started_services(load_model(variant.files), variant.services).values()
        for host, _ in port_mappings(svc)
        if host is not None
    ]
    assert len(published) == len(set(published)), f"a host port is published twice: {published}"
    assert set(published) == variant.published


def test_start_order(compose):
    """The router waits for nothing (not Ollama, not the pulls); the chat app
    waits for the router to be healthy; the pull for both Ollama servers."""
    services = compose["services"]
    assert set(started_services(compose, ("switchyard",))) == {"switchyard"}
    assert depends_on(services["chat"]) == {"switchyard": {"condition": "service_healthy"}}
    assert depends_on(services["ollama-pull"]) == {
        name: {"condition": "service_healthy"} for name in sorted(OLLAMA)
    }
    for name in OLLAMA:
        assert services[name].get("healthcheck"), name


def test_gpu_override_only_adds_the_gpu_reservation(compose):
    """docker-compose.gpu.yml changes the two Ollama servers and nothing else:
    it adds no service (the GPU servers are the CPU ones, same names, ports
    and volumes) and sets nothing but `deploy` on them."""
    override = load_yaml(GPU_FILE)
    assert set(override["services"]) == OLLAMA
    for name, svc in override["services"].items():
        assert set(svc) == {"deploy"}, f"{GPU_FILE.name}: {name} sets {sorted(svc)}"
        (device,) = gpu_devices(svc)
        assert device["driver"] == "nvidia" and device["capabilities"] == ["gpu"]
        assert device.get("count") == "all"
        assert "deploy" not in compose["services"][name], f"{name} reserves a GPU on CPU hosts too"
    assert {k for k in override if not k.startswith("x-")} == {"services"}
    merged = load_model((COMPOSE_FILE, GPU_FILE))
    for name in OLLAMA:
        merged["services"][name].pop("deploy")
    merged = {k: v for k, v in merged.items() if not k.startswith("x-")}
    assert merged == {k: v for k, v in compose.items() if not k.startswith("x-")}


def test_ollama_pull_targets_the_servers(compose):
    pull = compose["services"]["ollama-pull"]
    assert pull.get("restart") == "no"
    script = "\n".join(pull["command"]) if isinstance(pull["command"], list) else pull["command"]
    names = network_names(compose["services"])
    pulls = re.findall(r"OLLAMA_HOST=(\S+) ollama pull (\S+)", script)
    assert {model for _, model in pulls} == {"qwen2.5:0.5b", "phi3:mini"}
    for url, _ in pulls:
        parts = urlsplit(url)
        assert parts.hostname in names, f"{url}: no such service"
        assert names[parts.hostname] in depends_on(pull), f"ollama-pull does not wait for {parts.hostname}"
        containers = {c for _, c in port_mappings(compose["services"][names[parts.hostname]])}
        assert parts.port in containers


# -- the router's config in the stack ------------------------------------------


def test_mounted_config_passes_switchyard_check(compose):
    path = mounted_config_source(compose)
    assert path.is_file(), f"{path} is mounted at {CONFIG_IN_IMAGE} but does not exist"
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    result = subprocess.run(
        [str(switchyard_bin()), "check", str(path)],
        capture_output=True, text=True, timeout=60, env=env,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.rstrip().endswith(": ok")


@variant_params(WITH_OLLAMA)
def test_upstreams_are_compose_services(router_config, variant):
    path, config = router_config
    model = load_model(variant.files)
    names = network_names(started_services(model, variant.services))
    local = 0
    for name, upstream in config["upstreams"].items():
        base_url = upstream.get("base_url")
        if upstream.get("provider") == "mock" or not base_url:
            continue
        parts = urlsplit(base_url)
        host = parts.hostname
        assert host not in ("localhost", "127.0.0.1", "::1"), (
            f"{path.name}: upstreams.{name}: {base_url} is the router's own container"
        )
        if "." in host:  # a public host name (api.openai.com)
            assert parts.scheme == "https", f"upstreams.{name}: {base_url}"
            continue
        local += 1
        assert host in names, f"upstreams.{name}: {host!r} is no service of {sorted(names)}"
        containers = {c for _, c in port_mappings(model["services"][names[host]])}
        assert parts.port in containers, (
            f"upstreams.{name}: {base_url} uses port {parts.port}, but {names[host]} "
            f"listens on {sorted(containers)} inside the network"
        )
    assert local == 2


def test_same_models_as_the_bundled_router_yaml(router_config):
    """The stack serves what the bundled router.yaml declares; only the Ollama
    upstreams' addresses differ (service names instead of localhost ports)."""
    path, config = router_config
    bundled = yaml.safe_load((ROOT / "router.yaml").read_text())
    assert config["models"] == bundled["models"], (
        f"{path.name}'s models differ from router.yaml's: keep them in step"
    )
    assert config["upstreams"].keys() == bundled["upstreams"].keys()
    for name, upstream in bundled["upstreams"].items():
        if upstream.get("provider") == "ollama":
            upstream = {**upstream, "base_url": config["upstreams"][name]["base_url"]}
        assert config["upstreams"][name] == upstream, f"upstreams.{name} differs from router.yaml's"


def test_openai_key_is_passed_only_when_set(compose, router_config):
    """`${OPENAI_API_KEY:-}` would hand the router an empty key, which
    Switchyard treats as set: the OpenAI upstream would be enabled with no key."""
    _, config = router_config
    assert config["upstreams"]["openai"]["api_key"] == "${OPENAI_API_KEY}"
    env = environment(compose["services"]["switchyard"])
    assert "OPENAI_API_KEY" in env and env["OPENAI_API_KEY"] is None, env


def test_chat_talks_to_the_router(compose):
    chat = compose["services"]["chat"]
    url = urlsplit(environment(chat)["SWITCHYARD_BASE_URL"])
    switchyard = compose["services"]["switchyard"]
    assert url.scheme == "http" and url.hostname == "switchyard" and url.path == "/v1"
    assert url.port in {c for _, c in port_mappings(switchyard)}
    assert depends_on(chat)["switchyard"]["condition"] == "service_healthy"
    assert (8501, 8501) in port_mappings(chat)
    context = ROOT / chat["build"]
    for name in ("Dockerfile", "app.py", "requirements.txt"):
        assert (context / name).is_file(), f"{context / name} is missing"
    assert "SWITCHYARD_BASE_URL" in (context / "app.py").read_text()
    chat_cmd = json_form(instruction(final_stage((context / "Dockerfile").read_text()), "CMD")[-1])
    assert chat_cmd[chat_cmd.index("--server.port") + 1] == "8501"
    assert chat_cmd[chat_cmd.index("--server.address") + 1] == "0.0.0.0"


# -- Dockerfile, compose file and .dockerignore agree ---------------------------


def test_dockerfile_matches_compose(compose):
    stage = final_stage(DOCKERFILE.read_text())
    assert stage[0] == ("FROM", "scratch")
    switchyard = compose["services"]["switchyard"]
    assert switchyard["build"] == "."

    exposed = {int(p.split("/")[0]) for rest in instruction(stage, "EXPOSE") for p in rest.split()}
    assert exposed == {c for _, c in port_mappings(switchyard)} == {8000}

    cmd = json_form(instruction(stage, "CMD")[-1])
    assert cmd == ["--config", CONFIG_IN_IMAGE]
    assert json_form(instruction(stage, "ENTRYPOINT")[-1]) == ["/switchyard"]
    assert any(rest.split()[-1] == CONFIG_IN_IMAGE for rest in instruction(stage, "COPY")), (
        f"the image has no default config at {CONFIG_IN_IMAGE}"
    )
    env = " ".join(instruction(stage, "ENV"))
    assert f"SWITCHYARD_CONFIG={CONFIG_IN_IMAGE}" in env
    assert "SWITCHYARD_LISTEN=0.0.0.0:8000" in env
    assert instruction(stage, "USER") == ["65532:65532"]

    healthcheck = instruction(stage, "HEALTHCHECK")[-1]
    image_test = json_form(healthcheck[healthcheck.index("CMD") + 3:].strip())
    assert image_test == ["/switchyard", "healthcheck"]
    assert switchyard["healthcheck"]["test"] == ["CMD", *image_test]


def test_dockerfile_builds_a_static_release_binary():
    text = DOCKERFILE.read_text()
    assert re.search(r"^FROM rust:1-alpine AS builder$", text, re.M)
    assert "unknown-linux-musl" in text
    builds = re.findall(r"cargo build [^;\n]*", text)
    assert len(builds) == 2 and all("--release --locked" in b for b in builds)


def dockerignore_excludes(path: str, patterns: list[str]) -> bool:
    """Whether .dockerignore leaves `path` (relative, /-separated) out of the context."""

    def to_regex(pattern: str) -> re.Pattern:
        out, i = "", 0
        while i < len(pattern):
            if pattern.startswith("**/", i):
                out, i = out + "(?:.*/)?", i + 3
            elif pattern.startswith("**", i):
                out, i = out + ".*", i + 2
            elif pattern[i] == "*":
                out, i = out + "[^/]*", i + 1
            elif pattern[i] == "?":
                out, i = out + "[^/]", i + 1
            else:
                out, i = out + re.escape(pattern[i]), i + 1
        return re.compile(out + r"\Z")

    parts = path.split("/")
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    excluded = False
    for raw in patterns:
        negate = raw.startswith("!")
        pattern = raw[1:] if negate else raw
        pattern = pattern.strip("/")
        if any(to_regex(pattern).match(p) for p in prefixes):
            excluded = not negate
    return excluded


def test_dockerignore_keeps_what_the_build_reads():
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]
    needed = ["Cargo.toml", "Cargo.lock", "build.rs", "router.yaml", "src/main.rs", "src/lib.rs"]
    needed += [str(p.relative_to(ROOT)) for p in sorted((ROOT / "benches").glob("*.rs"))]
    # Files the crate embeds at compile time.
    for source in sorted((ROOT / "src").rglob("*.rs")):
        for literal in re.findall(r'include_(?:str|bytes)!\(\s*"([^"]+)"', source.read_text()):
            target = (source.parent / literal).resolve()
            assert target.is_file(), f"{source}: {literal} does not exist"
            needed.append(str(target.relative_to(ROOT)))
    kept_out = [path for path in needed if dockerignore_excludes(path, patterns)]
    assert not kept_out, f".dockerignore leaves out what the build reads: {kept_out}"
    for heavy in ("target/release/switchyard", ".git/HEAD", ".venv/bin/python", "docs/config.md"):
        assert dockerignore_excludes(heavy, patterns), f"{heavy} would be sent to the build"


# -- the router as the stack runs it ---------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def test_router_serves_before_ollama_exists(compose):
    """With deploy/router.compose.yaml and no Ollama reachable (as under
    `docker compose up switchyard chat`, or before the Ollama servers are up
    and the models pulled), the router is
    live and ready, `demo` answers, and `switchyard healthcheck` — the
    container's HEALTHCHECK — passes; against a closed port it fails."""
    binary = switchyard_bin()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "SWITCHYARD_LISTEN")}
    env["SWITCHYARD_CONFIG"] = str(mounted_config_source(compose))
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen(
        [str(binary), "--listen", f"127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=log, env=env,
    )

    def router_log() -> str:
        log.seek(0)
        return log.read().decode(errors="replace")

    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                status, _ = get(f"{base}/health")
                break
            except OSError:
                assert proc.poll() is None, router_log()
                assert time.monotonic() < deadline, "the router did not start in 30 s"
                time.sleep(0.1)
        assert status == 200
        status, body = get(f"{base}/health/ready")
        assert status == 200, body

        request = urllib.request.Request(
            f"{base}/v1/chat/completions",
            data=json.dumps({"model": "demo", "messages": [{"role": "user", "content": "hi"}]}).encode(),
            headers={"content-type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            answer = json.load(response)
        assert answer["choices"][0]["message"]["content"]

        if "healthcheck" not in subprocess.run([str(binary), "--help"], capture_output=True, text=True).stdout:
            pytest.skip("this switchyard has no `healthcheck` subcommand yet")
        ok = subprocess.run([str(binary), "healthcheck", f"{base}/health"], capture_output=True, timeout=30)
        assert ok.returncode == 0, ok.stderr
        closed = subprocess.run(
            [str(binary), "healthcheck", f"http://127.0.0.1:{free_port()}/health"],
            capture_output=True, timeout=30,
        )
        assert closed.returncode == 1, closed.stderr
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=35)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


# -- docker compose config (no engine needed) -------------------------------------


@functools.lru_cache(maxsize=None)
def compose_clis() -> list[tuple[str, list[str], dict]]:
    """Compose v2 command lines to try, each with the environment to run it in."""
    clis = []
    explicit = os.environ.get("DOCKER_COMPOSE")
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0:
        clis.append(("docker compose", [docker, "compose"], dict(os.environ)))
    elif docker and explicit:
        # Install the standalone binary as a CLI plugin for this run only.
        plugins = Path(tempfile.mkdtemp(prefix="docker-config-")) / "cli-plugins"
        plugins.mkdir()
        (plugins / "docker-compose").symlink_to(Path(explicit).resolve())
        env = dict(os.environ, DOCKER_CONFIG=str(plugins.parent))
        if subprocess.run([docker, "compose", "version"], capture_output=True, env=env).returncode == 0:
            clis.append(("docker compose (plugin from DOCKER_COMPOSE)", [docker, "compose"], env))
    if explicit:
        clis.append(("DOCKER_COMPOSE", shlex.split(explicit), dict(os.environ)))
    return clis


@pytest.fixture(scope="module")
def compose_cli() -> tuple[list[str], dict]:
    for _, argv, env in compose_clis():
        return argv, env
    pytest.skip("no Docker Compose v2 CLI (set DOCKER_COMPOSE, or install the compose plugin)")


def clean_env(env: dict) -> dict:
    """No COMPOSE_FILE, COMPOSE_PROFILES etc. and no OPENAI_API_KEY from the caller."""
    env = {k: v for k, v in env.items() if not k.startswith("COMPOSE_")}
    env.pop("OPENAI_API_KEY", None)
    return env


def compose_config(compose_cli, files: tuple[Path, ...], services: tuple[str, ...] = ()) -> dict:
    """`docker compose -f ... config [SERVICE...]` as JSON. `config` selects the
    named services and their dependencies the same way `up` does (both load
    the project through Compose's ToProject), so its services are what `up`
    would start."""
    argv, env = compose_cli
    env = clean_env(env)
    flags = [f for path in files for f in ("-f", str(path))]
    quiet = subprocess.run([*argv, *flags, "config", "-q", *services], capture_output=True, text=True, env=env, timeout=60)
    assert quiet.returncode == 0, quiet.stderr
    result = subprocess.run(
        [*argv, *flags, "config", "--format", "json", *services],
        capture_output=True, text=True, env=env, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@variant_params()
def test_docker_compose_config(compose, compose_cli, variant):
    model = compose_config(compose_cli, variant.files, variant.services)
    errors = schema_errors(model)
    assert not errors, "the resolved model fails the schema:\n" + "\n".join(errors)
    assert set(model["services"]) == variant.started
    published = [
        int(port["published"])
        for svc in model["services"].values()
        for port in svc.get("ports", [])
    ]
    assert sorted(published) == sorted(variant.published)
    switchyard = model["services"]["switchyard"]
    assert switchyard["environment"] == {"OPENAI_API_KEY": None}
    (mount,) = [v for v in switchyard["volumes"] if v["target"] == CONFIG_IN_IMAGE]
    assert mount["type"] == "bind" and mount["read_only"] is True
    assert Path(mount["source"]) == mounted_config_source(compose)
    wants_gpu = GPU_FILE in variant.files
    for name, svc in model["services"].items():
        devices = gpu_devices(svc)
        if wants_gpu and name in OLLAMA:
            assert [(d["driver"], d["capabilities"]) for d in devices] == [("nvidia", ["gpu"])], devices
        else:
            assert not devices, f"{variant.command}: {name} reserves {devices}"


def test_docker_compose_config_gpu_changes_only_the_reservation(compose_cli):
    """Merged by Compose itself, the GPU override adds `deploy` to the Ollama
    servers and leaves every service otherwise as it is on CPU."""
    cpu = compose_config(compose_cli, (COMPOSE_FILE,))
    gpu = compose_config(compose_cli, (COMPOSE_FILE, GPU_FILE))
    assert set(gpu["services"]) == set(cpu["services"])
    for name in gpu["services"]:
        if name in OLLAMA:
            assert gpu_devices(gpu["services"][name]) and not cpu["services"][name].get("deploy")
            gpu["services"][name].pop("deploy")
        assert gpu["services"][name] == cpu["services"][name], name
    for key in ("networks", "volumes", "name"):
        assert gpu[key] == cpu[key], key


def test_every_compose_cli_agrees():
    """When both `docker compose` and DOCKER_COMPOSE are there, both accept each variant."""
    clis = compose_clis()
    if not clis:
        pytest.skip("no Docker Compose v2 CLI")
    for label, argv, env in clis:
        for variant in VARIANTS:
            flags = [f for path in variant.files for f in ("-f", str(path))]
            result = subprocess.run(
                [*argv, *flags, "config", "-q", *variant.services],
                capture_output=True, text=True, env=clean_env(env), timeout=60,
            )
            assert result.returncode == 0, f"{label}, {variant.command}: {result.stderr}"


def test_vendored_schema_is_the_one_compose_uses():
    """The schema file is byte for byte the one embedded in the Compose CLI."""
    explicit = os.environ.get("DOCKER_COMPOSE")
    if not explicit or not Path(explicit).is_file():
        pytest.skip("DOCKER_COMPOSE is not a binary file")
    assert SCHEMA_FILE.read_bytes().rstrip(b"\n") in Path(explicit).read_bytes()


# -- the documentation ---------------------------------------------------------------


def markdown_section(text: str, heading: str) -> str:
    start = text.index(f"\n{heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start:] if end < 0 else text[start:end]


DOCS = {
    "README.md (## Docker)": lambda: markdown_section((ROOT / "README.md").read_text(), "## Docker"),
    "deploy/README.md": lambda: (ROOT / "deploy" / "README.md").read_text(),
    "docker-compose.yml": lambda: COMPOSE_FILE.read_text(),
}


@pytest.mark.parametrize("doc", DOCS, ids=str)
def test_docs_give_the_commands(doc):
    """Each place that tells how to run the stack gives every variant's
    command, and none still runs it with the old `cpu`/`gpu` profiles."""
    text = re.sub(r"\s*\\\n\s*", " ", DOCS[doc]())  # join shell continuation lines
    for variant in VARIANTS:
        assert variant.command in text, f"{doc} does not give `{variant.command}`"
    stale = re.findall(r"docker compose\b[^\n`]*--profile[^\n`]*", text)
    assert not stale, f"{doc} still runs the stack with a profile: {stale}"


def test_gpu_override_names_its_command():
    text = GPU_FILE.read_text()
    gpu = next(v for v in VARIANTS if v.id == "gpu")
    assert gpu.command in text


@pytest.mark.parametrize("dockerfile", ["Dockerfile", "examples/streamlit/Dockerfile"])
def test_dockerfiles_pass_hadolint(dockerfile):
    hadolint = shutil.which("hadolint") or shutil.which("hadolint", path=str(Path(sys.executable).parent))
    if not hadolint:
        pytest.skip("hadolint is not installed (deploy/tests/requirements.txt has it)")
    result = subprocess.run(
        [hadolint, "--no-color", str(ROOT / dockerfile)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
