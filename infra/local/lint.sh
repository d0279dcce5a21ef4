#!/usr/bin/env bash
# The library's static checks, as CI runs them: ruff's linter and formatter, then mypy (config in pyproject.toml).
# Needs .venv (infra/local/setup.sh). Fix what ruff can with: .venv/bin/ruff check --fix platform && .venv/bin/ruff format platform
set -uo pipefail
cd "$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
status=0
.venv/bin/ruff check platform || status=1
.venv/bin/ruff format --check platform || status=1
.venv/bin/mypy || status=1
[ "$status" -eq 0 ] || echo "static checks failed (above)" >&2
exit "$status"
