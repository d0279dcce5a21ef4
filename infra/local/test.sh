#!/usr/bin/env bash
# The test suite. The tests start what they need themselves: one local Ray, an S3-protocol server (moto) and
# the Serve application on 127.0.0.1, and Debian's headless Chromium for the web page (installed here once).
# Extra arguments go to pytest, e.g. -m "not slow".
set -uo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
bash "$repo/infra/local/setup.sh" || exit 1
bash "$repo/infra/local/browser.sh" || exit 1
cd "$repo"
export RAY_AUTH_MODE=disabled RAY_USAGE_STATS_ENABLED=0
.venv/bin/python -m pytest -q "$@"
code=$?
if [ "$code" -eq 5 ]; then
  echo "pytest collected no tests: treating that as a failure" >&2
  exit 1
fi
exit "$code"
