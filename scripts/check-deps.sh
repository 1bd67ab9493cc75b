#!/usr/bin/env bash
# Fails when a tracked dependency file or script refers to something only
# this machine has: a file URL, a temporary directory, a home
# directory, a local wheel directory for pip, a path dependency outside the
# repo. .ci/run runs it first; the test scripts then install every
# requirements file into a fresh venv from the registry alone
# (SWITCHYARD_FRESH_VENVS=1, see scripts/venv.sh), which catches what a
# pattern cannot.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

status=0
fail() {
  printf '%s\n' "$*" >&2
  status=1
}

# What a new machine installs from, or runs: requirements and lock files,
# package manifests, build and CI scripts.
mapfile -t files < <(git ls-files -- \
  '*requirements*.txt' '*.lock' 'package.json' '*/package.json' 'package-lock.json' '*/package-lock.json' \
  '*.toml' '*.cfg' '*.ini' '*.sh' '.ci/*' 'Dockerfile' '*/Dockerfile')

# A local path outside the repo, in any of those files.
local_path='file:/{2}|(^|[^[:alnum:]_$./-])(/tmp|/var/tmp|/home|/root|/Users|/opt/wheels)/|(^|[[:space:]=])~/|\$HOME|\$\{HOME\}'
# Ways pip or cargo is pointed at a local directory or file: in any file,
# and (the short options) in requirements files.
local_source='--find-links|--no-index|path[[:space:]]*=[[:space:]]*"(\.\./|/)'
local_requirement='^[[:space:]]*(-f|-e|--editable)[[:space:]]| @ +[./]'

for file in "${files[@]}"; do
  [ -f "$file" ] || continue
  case "$file" in
    # Paths inside a container image, and the Cargo registry's own lock.
    Dockerfile | */Dockerfile) pattern='file:/{2}' ;;
    Cargo.lock) pattern='file:/{2}' ;;
    scripts/check-deps.sh) continue ;;
    *requirements*.txt) pattern="$local_path|$local_source|$local_requirement" ;;
    *) pattern="$local_path|$local_source" ;;
  esac
  # Whole-line comments name no dependency; nor does a script's own cache
  # directory under the user's XDG cache, which the script fills from the
  # registry itself (scripts/test-real.sh).
  if hits=$(grep -n -E -e "$pattern" -- "$file" | grep -v -E '^[0-9]+:[[:space:]]*#' \
      | grep -v -F '${XDG_CACHE_HOME:-$HOME/.cache}/switchyard}'); then
    fail "$file refers to something outside the repo that a new machine will not have:"
    printf '  %s\n' "$hits" >&2
  fi
done

# The chat app's requirements promise the versions the UI tests run it with.
while read -r pin; do
  [ -n "$pin" ] || continue
  if ! grep -q -i -x -F -e "$pin" ui-tests/requirements.txt; then
    fail "examples/streamlit/requirements.txt pins $pin, but ui-tests/requirements.txt (what the UI tests prove) does not"
  fi
done < <(sed -e 's/#.*//' -e 's/[[:space:]]//g' examples/streamlit/requirements.txt | grep -v '^$')

if [ "$status" -eq 0 ]; then
  echo "dependency files: ${#files[@]} checked, no local paths"
else
  echo "fix: pin from the registry (name==version), and let the scripts install what they need" >&2
fi
exit "$status"
