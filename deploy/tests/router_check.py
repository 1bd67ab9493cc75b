"""`switchyard check` for the router configs of deploy/k8s and deploy/replicas,
and what to make of keys the binary may not know yet.

The multi-replica configs use `keys:` (router keys with limits), `state:`
(`state.redis`: shared limits and budget spend) and `cache.shared`. When the
binary under test predates them, `check` refuses exactly those keys as
unknown: `check_or_pending` then raises PendingConfigKeys, which the tests
mark as an expected failure (xfail, not strict, raises=PendingConfigKeys) so
that any *other* error still fails them. `without_pending` gives the same
config with those keys taken out, which must pass `check` in any case.
"""

from __future__ import annotations

import copy
import os
import re
import subprocess
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]

# The keys being added to the router config, as `check` names them when it
# refuses them: `state: unknown key (expected one of: ...)`.
PENDING_KEYS = ("keys", "state", "state.redis", "cache.shared")
PENDING_REASON = (
    "this switchyard predates `keys`, `state.redis` or `cache.shared` "
    "(multi-replica state through Redis): `check` refuses only those keys"
)
_PENDING_ERROR = re.compile(
    r": (?:%s): unknown key\b" % "|".join(re.escape(k) for k in PENDING_KEYS)
)


class PendingConfigKeys(Exception):
    """`check` failed, and only because of PENDING_KEYS."""


def switchyard_bin() -> Path:
    import pytest

    path = Path(os.environ.get("SWITCHYARD_BIN", ROOT / "target" / "debug" / "switchyard"))
    if not path.is_absolute():
        path = ROOT / path
    if not path.exists():
        pytest.fail(f"{path} does not exist: build it (cargo build) or set SWITCHYARD_BIN")
    return path


def env_refs(text: str) -> set[str]:
    """The variables a config reads as ${VAR} (also ${VAR:-x}, ${VAR:?x})."""
    return set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)", text))


def run_check(text: str, env: dict[str, str], name: str = "router.yaml") -> subprocess.CompletedProcess:
    """`switchyard check` on `text`, written to a file of its own directory."""
    with tempfile.TemporaryDirectory(prefix="switchyard-check-") as tmp:
        path = Path(tmp) / name
        path.write_text(text)
        base = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHYARD_")}
        return subprocess.run(
            [str(switchyard_bin()), "check", str(path)],
            capture_output=True, text=True, timeout=60, env={**base, **env},
        )


def error_lines(result: subprocess.CompletedProcess) -> list[str]:
    """The per-error lines `check` prints under `FILE: N errors`."""
    lines = (result.stdout + result.stderr).splitlines()
    return [line.strip() for line in lines if line.startswith("  ") and ": " in line]


def check_or_pending(text: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    """`check` must pass; if it fails only on PENDING_KEYS, raise PendingConfigKeys."""
    result = run_check(text, env)
    if result.returncode != 0:
        errors = error_lines(result)
        if errors and all(_PENDING_ERROR.search(e) for e in errors):
            raise PendingConfigKeys("\n".join(errors))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.rstrip().endswith(": ok"), result.stdout
    return result


def without_pending(config: dict) -> dict:
    """The config with `keys`, `state` and `cache.shared` removed."""
    config = copy.deepcopy(config)
    config.pop("keys", None)
    config.pop("state", None)
    cache = config.get("cache")
    if isinstance(cache, dict):
        cache.pop("shared", None)
        if not cache:
            config.pop("cache")
    return config


def dump(config: dict) -> str:
    return yaml.safe_dump(config, sort_keys=False)


def config_env_refs(config) -> set[str]:
    """The variables a parsed config reads, from its string values (not comments)."""
    if isinstance(config, dict):
        return set().union(*(config_env_refs(v) for v in config.values())) if config else set()
    if isinstance(config, list):
        return set().union(*(config_env_refs(v) for v in config)) if config else set()
    return env_refs(config) if isinstance(config, str) else set()
