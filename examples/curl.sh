#!/usr/bin/env bash
# curl examples against a local Switchyard (cargo run --release).
set -euo pipefail
BASE=${BASE:-http://localhost:8000}

echo "# models"
curl -s "$BASE/v1/models"; echo

echo "# non-stream chat with the built-in mock model"
curl -s "$BASE/v1/chat/completions" -H 'content-type: application/json' \
  -d '{"model":"demo","messages":[{"role":"user","content":"Hello!"}]}'; echo

echo "# streamed chat (-N: print events as they arrive)"
curl -sN "$BASE/v1/chat/completions" -H 'content-type: application/json' \
  -d '{"model":"demo","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"Hello!"}]}'

echo "# each upstream's last known state"
curl -s "$BASE/status"; echo
