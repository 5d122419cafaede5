#!/usr/bin/env bash
# Installs the pinned manifest checkers into a venv under target/ (ignored by git, no root
# needed, nothing touches the system Python). A stamp of the pins makes the second run instant.
# Prints the venv's bin directory.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=target/py-tools
pins=(checkov==3.3.30 kubernetes-validate==1.37.0 yamllint==1.38.0)
stamp=$venv/.pins

if [[ -x $venv/bin/python && -f $stamp && $(cat "$stamp") == "${pins[*]}" ]]; then
  echo "$PWD/$venv/bin"
  exit 0
fi

command -v python3 >/dev/null || { echo "setup-python: python3 not found (apt-get install python3)" >&2; exit 1; }
if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c 'import ensurepip' 2>/dev/null; then
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
    echo "setup-python: installing python3-venv" >&2
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-venv >&2
  else
    echo "setup-python: python3 cannot make a venv (apt-get install python3-venv)" >&2
    exit 1
  fi
fi

echo "setup-python: installing ${pins[*]} into $venv (once)" >&2
rm -rf "$venv"
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check "${pins[@]}" >&2
echo "${pins[*]}" >"$stamp"
echo "$PWD/$venv/bin"
