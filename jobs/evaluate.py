"""Ray job entry point: `causalprint evaluate` (run with python jobs/evaluate.py ... or submit with ray job submit)."""

import sys

from causalprint.cli import main

if __name__ == "__main__":
    sys.exit(main(["evaluate", *sys.argv[1:]]))
