#!/usr/bin/env bash
# Create .venv and install causalprint with the pinned versions of infra/constraints.txt.
# Idempotent: a second run installs nothing unless pyproject.toml or the constraints changed.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$repo"

python="${PYTHON:-}"
if [ -z "$python" ]; then
  python="$(command -v python3.11 || command -v python3)"
fi
if ! "$python" -c 'import sys; sys.exit(0 if (3, 11) <= sys.version_info[:2] < (3, 13) else 1)'; then
  echo "causalprint needs Python 3.11 or 3.12; set PYTHON=/path/to/python3.11" >&2
  exit 1
fi

[ -x .venv/bin/python ] || "$python" -m venv .venv
stamp=.venv/.causalprint-install
want="$(cat pyproject.toml infra/constraints.txt | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "installing causalprint and its pinned dependencies into .venv ..."
  .venv/bin/python -m pip install --quiet --upgrade pip
  # torch==2.13.0 is pinned to the CPU build; where no local wheel exists, add
  # PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu so pip does not fetch a CUDA build.
  .venv/bin/python -m pip install --quiet -c infra/constraints.txt -e ".[test]"
  echo "$want" > "$stamp"
fi
