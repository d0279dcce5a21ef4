#!/usr/bin/env bash
# The main job on its demo presets and embedded defaults: local Ray, local-disk storage in ./.causalprint.
# Extra arguments go to `causalprint run`, e.g. --set storage.root=s3://bucket/prefix, or --results docs/results.md
# to record the run (docs/results.md, "The main job").
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
bash "$repo/infra/local/setup.sh"
cd "$repo"
export RAY_AUTH_MODE="${RAY_AUTH_MODE:-disabled}" RAY_USAGE_STATS_ENABLED=0
exec .venv/bin/causalprint run --preset demo "$@"
