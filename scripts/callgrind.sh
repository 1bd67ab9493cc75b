#!/usr/bin/env bash
# Instructions per request, counted by valgrind's callgrind: repeatable on a
# shared, noisy machine where time is not (docs/benchmarks.md).
#
#   ./scripts/callgrind.sh                         # the release binary of this checkout
#   ./scripts/callgrind.sh path/to/switchyard ...  # these binaries, one line each
#
# For each binary: a second Switchyard serving the built-in `mock` provider
# is the upstream; the binary under test runs under callgrind with
# RUST_LOG=info (access log on) and routes `demo` to it; a Python keep-alive
# client sends 200 then 2,200 non-stream requests, and 100 then 1,100
# streamed ones (a 20-word answer), each count in a fresh run. Per request =
# (instructions of the long run - of the short run) / the difference, which
# leaves out start-up and the first connections. Counts vary by about 1 %
# from run to run (wake-ups depend on timing): compare medians of a few.
#
# Needs valgrind, python3 and curl. Ports 18600 and 18601 on 127.0.0.1.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

command -v valgrind >/dev/null || { echo "valgrind is not installed (apt-get install valgrind)" >&2; exit 1; }
if [ $# -eq 0 ]; then
  cargo build --release --quiet
  set -- target/release/switchyard
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat >"$work/upstream.yaml" <<'YAML'
server: { listen: 127.0.0.1:18601 }
upstreams: { mock: { provider: mock } }
models: { demo: { targets: [{ upstream: mock }] } }
YAML
mkdir -p "$work/router"
cat >"$work/router/router.yaml" <<'YAML'
server: { listen: 127.0.0.1:18600 }
upstreams:
  up: { provider: openai-compatible, base_url: "http://127.0.0.1:18601/v1", health_check: false }
models: { demo: { targets: [{ upstream: up }] } }
YAML

wait_up() {
  for _ in $(seq 150); do
    curl -s -o /dev/null "http://127.0.0.1:$1/health" && return 0
    sleep 0.2
  done
  echo "nothing answered on port $1" >&2
  return 1
}

# instructions BIN COUNT STREAM(0|1)
instructions() {
  RUST_LOG=info valgrind --tool=callgrind --callgrind-out-file="$work/cg.out" \
    "$1" --config "$work/router/router.yaml" >"$work/router.log" 2>&1 &
  local pid=$!
  wait_up 18600
  python3 - "$2" "$3" <<'PY'
import http.client, json, sys
n, stream = int(sys.argv[1]), sys.argv[2] == "1"
conn = http.client.HTTPConnection("127.0.0.1", 18600)
body = json.dumps({"model": "demo", "stream": stream,
                   "messages": [{"role": "user", "content": "hello there"}]})
for _ in range(n):
    conn.request("POST", "/v1/chat/completions", body, {"content-type": "application/json"})
    reply = conn.getresponse()
    reply.read()
    assert reply.status == 200, reply.status
PY
  kill -INT "$pid"
  wait "$pid" || true
  awk '/^(summary|totals):/ { print $2; exit }' "$work/cg.out"
}

for bin in "$@"; do
  RUST_LOG=warn "$bin" --config "$work/upstream.yaml" >"$work/upstream.log" 2>&1 &
  upstream=$!
  wait_up 18601
  a=$(instructions "$bin" 200 0)
  b=$(instructions "$bin" 2200 0)
  c=$(instructions "$bin" 100 1)
  d=$(instructions "$bin" 1100 1)
  kill "$upstream"
  wait "$upstream" 2>/dev/null || true
  printf '%s: non-stream %d instructions/request, stream %d instructions/request\n' \
    "$bin" $(((b - a) / 2000)) $(((d - c) / 1000))
done
