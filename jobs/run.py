"""The Ray job entry point of every job: ``python jobs/run.py JOB [ARGS]`` runs ``causalprint JOB [ARGS]``, e.g.
``ray job submit --runtime-env infra/ray/runtime_env.yaml -- python jobs/run.py scan inbox/ --preset demo``.
The jobs are those of ``causalprint.jobs.catalog`` (``python jobs/run.py --help`` lists them)."""

import sys

from causalprint.cli import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
