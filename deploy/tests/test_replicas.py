"""Offline checks of deploy/replicas: two Switchyard replicas behind nginx,
sharing one Redis (no Docker engine).

- compose.yaml validates against the Compose Specification schema and passes
  `docker compose config` (when a Compose v2 CLI is there, as run.sh makes
  sure), which resolves the services, the build context and the ports;
- nginx.conf balances over exactly the Switchyard services, on their port,
  with streaming-friendly settings; `nginx -t` accepts it when nginx is
  installed;
- router.yaml passes `switchyard check` (see router_check.py for keys the
  binary may not know yet), addresses the compose `redis` service, and has
  the one rate-limited key the README demonstrates.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from router_check import PENDING_REASON, PendingConfigKeys, check_or_pending, dump, run_check, without_pending
from test_compose import clean_env, compose_clis, depends_on, port_mappings, schema_errors

ROOT = Path(__file__).resolve().parents[2]
HERE = ROOT / "deploy" / "replicas"
COMPOSE = HERE / "compose.yaml"
NGINX_CONF = HERE / "nginx.conf"
ROUTER = HERE / "router.yaml"
CONFIG_IN_IMAGE = "/etc/switchyard/router.yaml"
REPLICAS = {"switchyard-a", "switchyard-b"}
DEMO_KEY = "sk-replicas-demo"  # the published demo key of README.md


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def router() -> dict:
    return yaml.safe_load(ROUTER.read_text())


def nginx_directives(text: str) -> list[tuple[str, list[str], tuple[str, ...]]]:
    """(name, arguments, names of the enclosing blocks) of each simple directive,
    and of each block as ("{name", arguments, enclosing blocks)."""
    text = re.sub(r"#[^\n]*", "", text)
    out, stack, words = [], [], []
    for token in re.findall(r'"[^"]*"|[{};]|[^\s{};]+', text):
        if token == "{":
            out.append(("{" + words[0], words[1:], tuple(stack)))
            stack.append(words[0])
            words = []
        elif token == "}":
            stack.pop()
            words = []
        elif token == ";":
            out.append((words[0], words[1:], tuple(stack)))
            words = []
        else:
            words.append(token)
    assert not stack and not words, "unbalanced nginx.conf"
    return out


def directive(directives, name: str, block: str) -> list[list[str]]:
    return [args for n, args, blocks in directives if n == name and block in blocks]


@pytest.fixture(scope="module")
def nginx() -> list:
    return nginx_directives(NGINX_CONF.read_text())


# -- compose.yaml ------------------------------------------------------------------------


def test_compose_file_matches_the_schema(compose):
    errors = schema_errors(compose)
    assert not errors, "\n".join(errors)


def test_services(compose):
    services = compose["services"]
    assert set(services) == REPLICAS | {"redis", "lb"}
    assert services["redis"]["image"] == "redis:7-alpine"
    assert services["lb"]["image"] == "nginx:alpine"
    for name in REPLICAS:
        svc = services[name]
        assert svc["build"] == "../..", "the replicas are the repository's Dockerfile"
        assert (COMPOSE.parent / svc["build"]).resolve() == ROOT
        assert not svc.get("ports"), f"{name} is reached through the load balancer only"
        assert depends_on(svc) == {"redis": {"condition": "service_healthy"}}
        assert svc["healthcheck"]["test"] == ["CMD", "/switchyard", "healthcheck"]
        (mount,) = svc["volumes"]
        source, target, mode = mount.split(":")
        assert (target, mode) == (CONFIG_IN_IMAGE, "ro")
        assert (HERE / source).resolve() == ROUTER
    assert services["redis"]["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    assert depends_on(services["lb"]) == {name: {"condition": "service_healthy"} for name in sorted(REPLICAS)}
    assert port_mappings(services["lb"]) == [(8080, 80)]
    (mount,) = services["lb"]["volumes"]
    source, target, mode = mount.split(":")
    assert (HERE / source).resolve() == NGINX_CONF and target == "/etc/nginx/nginx.conf" and mode == "ro"


def test_redis_never_evicts_live_limits(compose):
    command = compose["services"]["redis"]["command"]
    option = lambda name: command[command.index(name) + 1]  # noqa: E731
    assert option("--maxmemory-policy") in ("noeviction", "volatile-ttl")
    assert option("--appendonly") == "no"


@pytest.fixture(scope="module")
def compose_cli():
    for _, argv, env in compose_clis():
        return argv, env
    pytest.skip("no Docker Compose v2 CLI (set DOCKER_COMPOSE, or install the compose plugin)")


def test_docker_compose_config(compose_cli):
    argv, env = compose_cli
    env = clean_env(env)
    quiet = subprocess.run([*argv, "-f", str(COMPOSE), "config", "-q"], capture_output=True, text=True, env=env, timeout=60)
    assert quiet.returncode == 0, quiet.stderr
    result = subprocess.run(
        [*argv, "-f", str(COMPOSE), "config", "--format", "json"],
        capture_output=True, text=True, env=env, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    model = json.loads(result.stdout)
    errors = schema_errors(model)
    assert not errors, "the resolved model fails the schema:\n" + "\n".join(errors)
    assert model["name"] == "switchyard-replicas"
    assert set(model["services"]) == REPLICAS | {"redis", "lb"}
    for name in REPLICAS:
        svc = model["services"][name]
        assert Path(svc["build"]["context"]) == ROOT
        (mount,) = svc["volumes"]
        assert (mount["type"], Path(mount["source"]), mount["target"], mount["read_only"]) == (
            "bind", ROUTER, CONFIG_IN_IMAGE, True,
        )
    published = [int(p["published"]) for svc in model["services"].values() for p in svc.get("ports", [])]
    assert published == [8080]


# -- nginx.conf --------------------------------------------------------------------------


def test_nginx_balances_over_the_replicas(compose, nginx):
    servers = directive(nginx, "server", "upstream")
    hosts = {}
    for args in servers:
        host, _, port = args[0].partition(":")
        hosts[host] = int(port)
    assert set(hosts) == REPLICAS, f"nginx.conf's upstream servers {sorted(hosts)} are not the replicas"
    # Each replica listens on the image's port (SWITCHYARD_LISTEN) and says so.
    listen = yaml.safe_load(ROUTER.read_text())["server"]["listen"]
    assert set(hosts.values()) == {int(listen.rsplit(":", 1)[1])} == {8000}
    # Round robin: no other balancing method.
    for method in ("least_conn", "ip_hash", "hash", "random"):
        assert not directive(nginx, method, "upstream"), method
    assert directive(nginx, "keepalive", "upstream")
    (proxy_pass,) = directive(nginx, "proxy_pass", "location")
    (upstream_name,) = [args[0] for name, args, _ in nginx if name == "{upstream"]
    assert proxy_pass == [f"http://{upstream_name}"]
    # nginx listens where compose publishes.
    assert directive(nginx, "listen", "server") == [["80"]]
    assert port_mappings(compose["services"]["lb"]) == [(8080, 80)]


def test_nginx_streams(nginx):
    """Streaming-friendly: no buffering of answers, HTTP/1.1 keep-alive to
    the replicas, and read timeouts as long as a stream may last."""
    assert directive(nginx, "proxy_buffering", "location") == [["off"]]
    assert directive(nginx, "proxy_http_version", "location") == [["1.1"]]
    assert directive(nginx, "proxy_set_header", "location").count(["Connection", '""']) == 1
    (read,) = directive(nginx, "proxy_read_timeout", "location")
    assert int(read[0].rstrip("s")) >= 900  # the router's default timeouts.total (15m)


def test_nginx_accepts_the_config():
    """`nginx -t` on nginx.conf, with the replicas' names pointed at loopback
    (they resolve only inside the compose network)."""
    binary = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if Path(p).exists()), None)
    if not binary:
        pytest.skip("nginx is not installed")
    with tempfile.TemporaryDirectory(prefix="nginx-t-") as tmp:
        text = NGINX_CONF.read_text()
        for name in REPLICAS:
            text = text.replace(f"{name}:8000", "127.0.0.1:8000")
        conf = Path(tmp) / "nginx.conf"
        conf.write_text(text)
        result = subprocess.run(
            [binary, "-t", "-p", tmp, "-c", str(conf), "-g", f"pid {tmp}/nginx.pid;"],
            capture_output=True, text=True, timeout=30,
        )
    assert result.returncode == 0, result.stderr


# -- router.yaml -------------------------------------------------------------------------


@pytest.mark.xfail(strict=False, raises=PendingConfigKeys, reason=PENDING_REASON)
def test_router_yaml_passes_switchyard_check():
    check_or_pending(ROUTER.read_text(), {})


def test_router_yaml_without_the_new_keys_passes_switchyard_check(router):
    result = run_check(dump(without_pending(router)), {})
    assert result.returncode == 0, result.stdout + result.stderr


def test_router_yaml_shares_state_through_the_compose_redis(compose, router):
    redis = router["state"]["redis"]
    url = urlsplit(redis["url"])
    assert url.scheme == "redis" and url.hostname == "redis" and url.port == 6379
    assert url.hostname in compose["services"]
    assert redis["on_error"] in ("fail_open", "fail_closed")
    assert router["models"]["demo"]["targets"] == [{"upstream": "mock"}]
    assert router["upstreams"]["mock"]["provider"] == "mock"


def test_the_demo_key_has_an_rpm_limit(router):
    """One key, 10 requests a minute, for the README's demonstration: 30
    requests alternating between the replicas, exactly 10 admitted."""
    (key,) = router["keys"]
    assert key["sha256"] == hashlib.sha256(DEMO_KEY.encode()).hexdigest()
    assert key["rpm"] == 10
    assert key["models"] == ["demo"]
    readme = (HERE / "README.md").read_text()
    assert DEMO_KEY in readme and "rpm" in readme


def test_readme_gives_the_command():
    text = (HERE / "README.md").read_text()
    assert "docker compose -f deploy/replicas/compose.yaml up --build" in text
    assert "docker compose -f deploy/replicas/compose.yaml up --build" in COMPOSE.read_text()
