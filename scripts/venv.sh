# Sourced by the test scripts: one way to make a Python venv from a pinned
# requirements file, and to prove the file is all a new machine needs.
#
#   ensure_venv DIR REQUIREMENTS
#
# Makes DIR (or reuses it while REQUIREMENTS and the Python version are
# unchanged since the last install), installs REQUIREMENTS, then checks what
# got installed: every package must come from the registry (`pip freeze`
# shows `name==version`, never `name @ <a local file or URL>`), and the file must pin
# exactly the installed set (a complete lock).
#
# With SWITCHYARD_FRESH_VENVS=1 (.ci/run sets it) the venv is always made
# anew and pip is run the way a new machine would run it: no wheel cache, no
# pip config file, no find-links directory, so a dependency that exists only
# on this machine fails the run here instead of on the next machine.

# `name==version` lines, names lower-cased with `-`/`_`/`.` folded, sorted:
# the form in which a requirements file and `pip freeze` are compared.
# Pins with an environment marker (`; platform_machine == …`) are left out
# on both sides: whether they install depends on the machine.
_venv_pins() {
  local file=$1 requirements=$2 conditional
  conditional=$(grep -v '^[[:space:]]*#' "$requirements" | grep ';' | sed -e 's/[=<>!~ ;].*//' | tr 'A-Z_.' 'a-z--' | tr '\n' ' ' || true)
  sed -e 's/#.*//' -e 's/;.*//' -e 's/[[:space:]]//g' "$file" | grep -v '^$' \
    | awk -F'==' -v skip="$conditional" '
        BEGIN { n = split(skip, s, " "); for (i = 1; i <= n; i++) drop[s[i]] = 1 }
        { name = tolower($1); gsub(/[-_.]+/, "-", name); if (!(name in drop)) print name "==" $2 }' \
    | sort
}

ensure_venv() {
  local dir=$1 requirements=$2
  local fresh=${SWITCHYARD_FRESH_VENVS:-0}
  local pip_env=(env)
  if [ "$fresh" = 1 ]; then
    # Registry only: keep the certificate setting the machine's pip uses to
    # reach it, drop everything else a config file or the environment adds.
    local cert=${PIP_CERT:-$(python3 -m pip config get global.cert 2>/dev/null || true)}
    pip_env=(env -u PIP_FIND_LINKS -u PIP_NO_INDEX PIP_CONFIG_FILE=/dev/null PIP_NO_CACHE_DIR=1)
    [ -n "$cert" ] && pip_env+=("PIP_CERT=$cert")
    python3 -m venv --clear "$dir"
  elif ! "$dir/bin/python" -c '' 2>/dev/null; then
    # Missing, or left behind by a Python that is gone: make it anew.
    python3 -m venv --clear "$dir"
  fi

  local stamp="$dir/.requirements.sha256" want
  want=$(cat "$requirements" <("$dir/bin/python" --version) | sha256sum | cut -d' ' -f1)
  if [ "$fresh" != 1 ] && [ "$(cat "$stamp" 2>/dev/null || true)" = "$want" ]; then
    echo "$requirements unchanged since the last install into $dir; skipping pip"
    return 0
  fi
  rm -f "$stamp"
  # Python Playwright only downloads browsers on `playwright install`, which
  # nothing here runs; this says so to anything that would.
  "${pip_env[@]}" PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 \
    "$dir/bin/python" -m pip install -q --disable-pip-version-check -r "$requirements"

  local frozen
  frozen=$("$dir/bin/python" -m pip freeze --disable-pip-version-check)
  if grep -q ' @ ' <<<"$frozen"; then
    echo "$requirements: installed from outside the registry (a local file or URL):" >&2
    grep ' @ ' <<<"$frozen" >&2
    echo "pin these as name==version from the registry" >&2
    return 1
  fi
  local diff
  if ! diff=$(diff <(_venv_pins "$requirements" "$requirements") <(_venv_pins /dev/stdin "$requirements" <<<"$frozen")); then
    echo "$requirements is not the complete lock of what it installs ('<' pinned, not installed; '>' installed, not pinned):" >&2
    echo "$diff" | grep '^[<>]' >&2
    echo "regenerate it with \`$dir/bin/pip freeze\` as its header says" >&2
    return 1
  fi
  echo "$want" >"$stamp"
}
