#!/usr/bin/env bash
# The second test command: the Streamlit chat app (examples/streamlit/)
# against the real router. Builds Switchyard (debug), installs Debian's
# Chromium if it is missing, puts ui-tests/requirements.txt into .venv-ui,
# then runs ui-tests/: the app under Streamlit's AppTest, and end to end in
# headless Chromium driven by Playwright (screenshots in artifacts/).
# Needs cargo, python3 (with venv) and apt-get (as root, or with sudo) when
# /usr/bin/chromium is not there yet. Playwright never downloads a browser.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. scripts/venv.sh

step() { printf '\n==> %s\n' "$*"; }

bin="${CARGO_TARGET_DIR:-target}/debug/switchyard"
chromium="${CHROMIUM:-/usr/bin/chromium}"

step "cargo build (debug: the binary the UI tests run)"
cargo build

if [ ! -x "$chromium" ]; then
  step "apt-get install chromium (for the browser tests)"
  if [ "$(id -u)" -eq 0 ]; then
    sudo=()
  elif command -v sudo >/dev/null 2>&1; then
    sudo=(sudo)
  else
    echo "no Chromium at $chromium, and neither root nor sudo to install it:" >&2
    echo "install Debian's chromium package, or set CHROMIUM to a Chromium binary" >&2
    exit 1
  fi
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
"$chromium" --version 2>/dev/null || true

step "python venv .venv-ui with ui-tests/requirements.txt"
ensure_venv .venv-ui ui-tests/requirements.txt

step "pytest ui-tests (the chat app against $bin; screenshots in artifacts/)"
mkdir -p artifacts
SWITCHYARD_BIN="$bin" CHROMIUM="$chromium" PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 \
  .venv-ui/bin/python -m pytest -q ui-tests
