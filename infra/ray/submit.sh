#!/usr/bin/env bash
# Submit one of causalprint's jobs (a file of jobs/) to a running Ray cluster with `ray job submit` and the
# runtime_env of infra/ray/runtime_env.yaml; the job's arguments follow its name.
#
#   bash infra/ray/submit.sh [--address URL] [--print] JOB [ARGS...]
#   bash infra/ray/submit.sh main --preset demo                         # the main job
#   bash infra/ray/submit.sh --address http://127.0.0.1:8265 scan zoo/demo/images --preset demo
#
# URL: the cluster's dashboard (job submission) address, default $RAY_ADDRESS or http://127.0.0.1:8265 (the
# compose stack's head; on Kubernetes, `kubectl port-forward service/causalprint-head-svc 8265:8265` first).
# --print shows the command instead of running it. The cluster's nodes need the causalprint image, or at least
# its dependencies; storage and MLflow come from the nodes' CAUSALPRINT__* variables, or from --set arguments.
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
if [ $# -lt 1 ]; then
  echo "usage: infra/ray/submit.sh [--address URL] [--print] JOB [ARGS...]; JOB is one of: $(cd "$repo/jobs" && ls -- *.py | sed 's/\.py$//' | tr '\n' ' ')" >&2
  exit 2
fi
job="$1"; shift
if [ ! -f "$repo/jobs/$job.py" ]; then
  echo "no job named $job (no file jobs/$job.py); jobs: $(cd "$repo/jobs" && ls -- *.py | sed 's/\.py$//' | tr '\n' ' ')" >&2
  exit 2
fi
ray="ray"
[ -x "$repo/.venv/bin/ray" ] && ray="$repo/.venv/bin/ray"
cmd=("$ray" job submit --address "$address" --runtime-env infra/ray/runtime_env.yaml -- python "jobs/$job.py" "$@")
cd "$repo"
if [ "$show" -eq 1 ]; then
  printf '%q ' "${cmd[@]}"; echo
  exit 0
fi
exec "${cmd[@]}"
