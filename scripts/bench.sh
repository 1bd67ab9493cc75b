#!/usr/bin/env bash
# The end-to-end benchmark in one command (docs/benchmarks.md): builds the
# release binary and benches/e2e, installs nginx from Debian as the
# reference proxy when it is missing (BENCH_NGINX=1, the default; needs root
# and apt-get), then sends the same load straight to a mock upstream,
# through Switchyard and through nginx, and prints one table. The table is
# also written to target/bench/e2e-<UTC time>.md.
#
#   ./scripts/bench.sh                                 # everything, about 3 minutes
#   BENCH_SECONDS=10 ./scripts/bench.sh                # longer cells (1..60 s)
#   ./scripts/bench.sh --workloads stream --loads 64   # a subset (see --help)
#   BENCH_NGINX=0 ./scripts/bench.sh                   # no nginx: direct and Switchyard only
#   SWITCHYARD_BASELINE_BIN=path/to/old/switchyard ./scripts/bench.sh  # + target `baseline` (an older
#                                                      #   binary): before/after in one table
#   ./scripts/bench.sh --cold-start 20                 # + cold start: spawn -> first answer, 20 times
#   ./scripts/bench.sh --workloads none --soak 600     # only a 10-minute soak: RSS under 64 streams
#
# Cold start and soak are off by default (BENCH_COLD_START=0, BENCH_SOAK=0).
#
# Not part of CI: the numbers depend on the machine and its neighbours.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

step() { printf '\n==> %s\n' "$*" >&2; }

export BENCH_NGINX="${BENCH_NGINX:-1}"
if [ "$BENCH_NGINX" != 0 ] && ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    step "apt-get install nginx-light (the reference proxy)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # RUNLEVEL=1: the package must not start a system nginx on port 80;
    # the bench runs its own, on a free loopback port.
    RUNLEVEL=1 apt-get install -y -qq --no-install-recommends nginx-light >/dev/null ||
      RUNLEVEL=1 apt-get install -y -qq --no-install-recommends nginx >/dev/null ||
      echo "could not install nginx: running without the reference" >&2
  else
    echo "nginx is not installed and cannot be installed here (needs root and apt-get): running without it" >&2
  fi
fi
export PATH="$PATH:/usr/sbin"

step "cargo bench --bench e2e --no-run (release profile; builds target/release/switchyard too)"
cargo bench --bench e2e --no-run

mkdir -p target/bench
out="target/bench/e2e-$(date -u +%Y%m%dT%H%M%SZ).md"
step "cargo bench --bench e2e -- $* (table also in $out)"
cargo bench --bench e2e -- "$@" | tee "$out"
