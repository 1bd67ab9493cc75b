#!/usr/bin/env bash
# The one test command: build Switchyard, run every Rust test, check the
# bundled router.yaml, then run the OpenAI SDK compatibility suite (compat/)
# against the debug binary. Needs cargo and python3 (with venv); installs the
# suite's pinned Python packages into .venv on first use.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. scripts/venv.sh

step() { printf '\n==> %s\n' "$*"; }

# The two test suites both run even when one fails, so one run shows every
# failure; the script still exits non-zero at the end.
failed=()
bin="${CARGO_TARGET_DIR:-target}/debug/switchyard"

step "cargo build (debug: the binary the compat suite runs)"
cargo build

step "cargo test (every Rust test)"
cargo test --no-fail-fast || failed+=("cargo test")

step "switchyard check (the bundled router.yaml and the examples must stay valid)"
"$bin" check router.yaml
for example in examples/*.yaml; do
  "$bin" check "$example" >/dev/null
  echo "$example: ok"
done

step "python venv .venv with compat/requirements.txt"
ensure_venv .venv compat/requirements.txt

step "deploy/tests (Dockerfile and docker-compose.yml: Compose schema, docker compose config, consistency)"
SWITCHYARD_BIN="$bin" ./deploy/tests/run.sh || failed+=("deploy/tests")

step "pytest compat (the OpenAI Python SDK against target/debug/switchyard)"
SWITCHYARD_BIN="$bin" .venv/bin/python -m pytest -q compat || failed+=("pytest compat")

if [ ${#failed[@]} -gt 0 ]; then
  printf '\n==> FAILED: %s\n' "${failed[*]}"
  exit 1
fi
printf '\n==> all tests passed\n'
