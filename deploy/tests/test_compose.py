"""Checks of the container packaging that need no Docker engine.

docker-compose.yml against the Compose Specification schema, the services
against each other, deploy/router.compose.yaml against `switchyard check` and
the services it addresses, the Dockerfile against the compose file, and
.dockerignore against what the build reads. When a Docker Compose v2 CLI is
available (DOCKER_COMPOSE, `docker compose`, or a v2 `docker-compose`),
`config` is run too: it needs no engine.

Run through deploy/tests/run.sh, which makes the virtualenv and fetches the
Compose CLI; or by hand with SWITCHYARD_BIN (default target/debug/switchyard)
and optionally DOCKER_COMPOSE set.
"""

from __future__ import annotations

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
from pathlib import Path
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
SCHEMA_FILE = ROOT / "deploy" / "compose-spec.schema.json"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
CONFIG_IN_IMAGE = "/etc/switchyard/router.yaml"

#: Profile selections the stack is meant to be run with: none (router and
#: chat only), `cpu` and `gpu` (one Ollama variant each, never both).
PROFILES: list[tuple[str, ...]] = [(), ("cpu",), ("gpu",)]

#: Host ports the stack publishes, per profile selection.
EXPECTED_PUBLISHED = {
    (): {8000, 8501},
    ("cpu",): {8000, 8501, 11435, 11436},
    ("gpu",): {8000, 8501, 11435, 11436},
}


# -- helpers ------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


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


def active_services(compose: dict, profiles: tuple[str, ...]) -> dict[str, dict]:
    """The services Compose enables for a profile selection."""
    return {
        name: svc
        for name, svc in compose["services"].items()
        if not svc.get("profiles") or set(svc["profiles"]) & set(profiles)
    }


def depends_on(svc: dict) -> dict[str, dict]:
    deps = svc.get("depends_on") or {}
    if isinstance(deps, list):  # short syntax
        return {name: {"condition": "service_started"} for name in deps}
    return deps


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


def network_names(compose: dict, profiles: tuple[str, ...]) -> dict[str, str]:
    """Each name that resolves on the default network -> the service behind it."""
    names: dict[str, str] = {}
    for name, svc in active_services(compose, profiles).items():
        for alias in [name] + aliases(svc):
            assert alias not in names, (
                f"with profiles {profiles or '(none)'}, {alias!r} names both "
                f"{names[alias]!r} and {name!r}"
            )
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


# -- the schema and the compose file ------------------------------------------


def test_vendored_schema_is_the_compose_specification():
    schema = json.loads(SCHEMA_FILE.read_text())
    assert schema["title"] == "Compose Specification"
    jsonschema.Draft7Validator.check_schema(schema)
    # Recent enough for what the compose file uses.
    depends = schema["definitions"]["service"]["properties"]["depends_on"]["oneOf"][1]
    assert "required" in depends["patternProperties"]["^[a-zA-Z0-9._-]+$"]["properties"]


def test_compose_file_matches_the_schema(compose):
    schema = json.loads(SCHEMA_FILE.read_text())
    validator = jsonschema.Draft7Validator(schema)
    errors = sorted(validator.iter_errors(compose), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(
        f"{'.'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}" for e in errors
    )


def test_the_schema_does_reject_mistakes(compose):
    """The validation above is not vacuous: typical slips fail it."""
    validator = jsonschema.Draft7Validator(json.loads(SCHEMA_FILE.read_text()))
    broken = json.loads(json.dumps(compose))
    broken["services"]["switchyard"]["healthchek"] = {"test": ["CMD", "true"]}
    assert list(validator.iter_errors(broken))
    broken = json.loads(json.dumps(compose))
    broken["services"]["chat"]["depends_on"]["switchyard"]["condition"] = "service_ready"
    assert list(validator.iter_errors(broken))


@pytest.mark.parametrize("profiles", PROFILES, ids=lambda p: "+".join(p) or "no-profile")
def test_dependencies_exist(compose, profiles):
    services = compose["services"]
    active = active_services(compose, profiles)
    for name, svc in services.items():
        for dep, spec in depends_on(svc).items():
            assert dep in services, f"{name} depends on undefined service {dep!r}"
            if name in active and spec.get("required", True):
                assert dep in active, (
                    f"with profiles {profiles or '(none)'}, {name} requires {dep}, "
                    "which that selection does not start"
                )
            condition = spec.get("condition", "service_started")
            if condition == "service_healthy":
                assert services[dep].get("healthcheck"), f"{name} waits for {dep} to be healthy, which has no healthcheck"


@pytest.mark.parametrize("profiles", PROFILES, ids=lambda p: "+".join(p) or "no-profile")
def test_published_ports(compose, profiles):
    published = [
        host
        for svc in active_services(compose, profiles).values()
        for host, _ in port_mappings(svc)
        if host is not None
    ]
    assert len(published) == len(set(published)), f"a host port is published twice: {published}"
    assert set(published) == EXPECTED_PUBLISHED[profiles]


def test_cpu_and_gpu_variants_are_interchangeable(compose):
    """Each GPU server stands in for its CPU twin: same volume, port and network name."""
    services = compose["services"]
    for cpu in ("ollama-qwen", "ollama-phi"):
        gpu = f"{cpu}-gpu"
        assert services[cpu]["profiles"] == ["cpu"]
        assert services[gpu]["profiles"] == ["gpu"]
        assert port_mappings(services[cpu]) == port_mappings(services[gpu])
        assert services[cpu]["volumes"] == services[gpu]["volumes"]
        assert aliases(services[gpu]) == [cpu]
        devices = services[gpu]["deploy"]["resources"]["reservations"]["devices"]
        assert devices[0]["driver"] == "nvidia" and "gpu" in devices[0]["capabilities"]
        assert "deploy" not in services[cpu]


def test_ollama_pull_targets_the_servers(compose):
    pull = compose["services"]["ollama-pull"]
    assert pull.get("restart") == "no"
    script = "\n".join(pull["command"]) if isinstance(pull["command"], list) else pull["command"]
    names = network_names(compose, ("cpu",))
    pulls = re.findall(r"OLLAMA_HOST=(\S+) ollama pull (\S+)", script)
    assert {model for _, model in pulls} == {"qwen2.5:0.5b", "phi3:mini"}
    for url, _ in pulls:
        parts = urlsplit(url)
        assert parts.hostname in names, f"{url}: no such service"
        containers = {c for _, c in port_mappings(compose["services"][names[parts.hostname]])}
        assert parts.port in containers
    for dep, spec in depends_on(pull).items():
        assert spec["condition"] == "service_healthy", dep


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


@pytest.mark.parametrize("profiles", [("cpu",), ("gpu",)], ids=lambda p: p[0])
def test_upstreams_are_compose_services(compose, router_config, profiles):
    path, config = router_config
    names = network_names(compose, profiles)
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
        containers = {c for _, c in port_mappings(compose["services"][names[host]])}
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
    """With deploy/router.compose.yaml and no Ollama reachable (as before the
    `cpu`/`gpu` profile is started or the models are pulled), the router is
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


@pytest.mark.parametrize("profiles", PROFILES, ids=lambda p: "+".join(p) or "no-profile")
def test_docker_compose_config(compose, compose_cli, profiles):
    argv, env = compose_cli
    env = {k: v for k, v in env.items() if not k.startswith("COMPOSE_")}
    env.pop("OPENAI_API_KEY", None)
    flags = ["-f", str(COMPOSE_FILE)] + [f for p in profiles for f in ("--profile", p)]
    quiet = subprocess.run([*argv, *flags, "config", "-q"], capture_output=True, text=True, env=env, timeout=60)
    assert quiet.returncode == 0, quiet.stderr
    result = subprocess.run(
        [*argv, *flags, "config", "--format", "json"],
        capture_output=True, text=True, env=env, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    model = json.loads(result.stdout)
    assert set(model["services"]) == set(active_services(compose, profiles))
    published = {
        int(port["published"])
        for svc in model["services"].values()
        for port in svc.get("ports", [])
    }
    assert published == EXPECTED_PUBLISHED[profiles]
    switchyard = model["services"]["switchyard"]
    assert switchyard["environment"] == {"OPENAI_API_KEY": None}
    (mount,) = [v for v in switchyard["volumes"] if v["target"] == CONFIG_IN_IMAGE]
    assert mount["type"] == "bind" and mount["read_only"] is True
    assert Path(mount["source"]) == mounted_config_source(compose)


def test_every_compose_cli_agrees(compose):
    """When both `docker compose` and DOCKER_COMPOSE are there, both accept the file."""
    clis = compose_clis()
    if not clis:
        pytest.skip("no Docker Compose v2 CLI")
    for label, argv, env in clis:
        result = subprocess.run([*argv, "-f", str(COMPOSE_FILE), "config", "-q"], capture_output=True, text=True, env=env, timeout=60)
        assert result.returncode == 0, f"{label}: {result.stderr}"


def test_vendored_schema_is_the_one_compose_uses():
    """The schema file is byte for byte the one embedded in the Compose CLI."""
    explicit = os.environ.get("DOCKER_COMPOSE")
    if not explicit or not Path(explicit).is_file():
        pytest.skip("DOCKER_COMPOSE is not a binary file")
    assert SCHEMA_FILE.read_bytes().rstrip(b"\n") in Path(explicit).read_bytes()


@pytest.mark.parametrize("dockerfile", ["Dockerfile", "examples/streamlit/Dockerfile"])
def test_dockerfiles_pass_hadolint(dockerfile):
    hadolint = shutil.which("hadolint") or shutil.which("hadolint", path=str(Path(sys.executable).parent))
    if not hadolint:
        pytest.skip("hadolint is not installed (deploy/tests/requirements.txt has it)")
    result = subprocess.run(
        [hadolint, "--no-color", str(ROOT / dockerfile)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
