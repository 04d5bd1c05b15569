#!/usr/bin/env bash
# Create or update .venv idempotently. Usage: scripts/setup.sh [core|all]
#   core: the compiler only (specc render/validate/schema) - fast, no TensorFlow.
#   all:  compiler + runtime + explain (alibi) + torch + test tools.
# A stamp of pyproject.toml + constraints.txt + mode makes the second run a no-op.
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:-core}"
case "$mode" in
  core) extras="" ;;
  all)  extras="[runtime,explain,torch,dev]" ;;
  *) echo "usage: scripts/setup.sh [core|all]" >&2; exit 2 ;;
esac
py="${PYTHON:-python3.11}"
command -v "$py" >/dev/null 2>&1 || py=python3
# Byte-compile our own sources: Python reads .pyc files even where PYTHONDONTWRITEBYTECODE
# stops it from writing them, and compiling specc's modules on every start costs more than
# the rest of a cached `specc render`.
precompile() { .venv/bin/python -m compileall -q -j 0 compiler runtime >/dev/null 2>&1 || true; }
stamp_want="$mode $(cat pyproject.toml constraints.txt | sha256sum | cut -c1-16)"
if [ -f .venv/.specc-stamp ]; then
  have="$(cat .venv/.specc-stamp)"
  # "all" satisfies "core" too.
  if [ "$have" = "$stamp_want" ] || { [ "$mode" = core ] && [ "$have" = "all ${stamp_want#* }" ]; }; then
    precompile
    exit 0
  fi
fi
[ -x .venv/bin/python ] || "$py" -m venv .venv
quiet() { PYTHONWARNINGS=ignore "$@" 2> >(grep -v -e "is ignored: it is neither a file nor a directory" >&2); }
quiet .venv/bin/python -m pip install -q --disable-pip-version-check --upgrade "pip>=24" >/dev/null
quiet .venv/bin/python -m pip install -q --disable-pip-version-check -c constraints.txt \
  --config-settings editable_mode=compat -e ".$extras"
echo "$stamp_want" > .venv/.specc-stamp
precompile
