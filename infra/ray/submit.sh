#!/usr/bin/env bash
# Submit one of causalprint's jobs to a running Ray cluster: `ray job submit` of jobs/run.py (which runs
# `causalprint JOB ARGS...`) with the runtime_env of infra/ray/runtime_env.yaml.
#
#   bash infra/ray/submit.sh [--address URL] [--print] JOB [ARGS...]
#   bash infra/ray/submit.sh run --preset demo                          # the main job
#   bash infra/ray/submit.sh --address http://127.0.0.1:8265 scan zoo/demo/images --preset demo
#
# JOB and ARGS are those of the causalprint command (`causalprint --help`); with a local .venv the job's name is
# checked here first. URL: the cluster's dashboard (job submission) address, default $RAY_ADDRESS or
# http://127.0.0.1:8265 (the compose stack's head; on Kubernetes, `kubectl port-forward
# service/causalprint-head-svc 8265:8265` first). --print shows the command instead of running it. The cluster's
# nodes need the causalprint image, or its dependencies; storage and MLflow come from the nodes' CAUSALPRINT__*
# variables, or from --set arguments.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
address="${RAY_ADDRESS:-http://127.0.0.1:8265}"
show=0
while [ $# -gt 0 ]; do
  case "$1" in
    --address) address="$2"; shift 2 ;;
    --print) show=1; shift ;;
    *) break ;;
  esac
done
if [ $# -lt 1 ] || [[ "$1" == -* ]]; then
  echo "usage: infra/ray/submit.sh [--address URL] [--print] JOB [ARGS...]; JOB is a causalprint command (run, scan, train, ...: causalprint --help)" >&2
  exit 2
fi
cd "$repo"
if [ -x .venv/bin/python ] && ! .venv/bin/python jobs/run.py "$1" --help >/dev/null 2>&1; then
  echo "no job named $1: JOB is a causalprint command (.venv/bin/causalprint --help lists them)" >&2
  exit 2
fi
ray="ray"
[ -x .venv/bin/ray ] && ray="$repo/.venv/bin/ray"
cmd=("$ray" job submit --address "$address" --runtime-env infra/ray/runtime_env.yaml -- python jobs/run.py "$@")
if [ "$show" -eq 1 ]; then
  printf '%q ' "${cmd[@]}"; echo
  exit 0
fi
exec "${cmd[@]}"
