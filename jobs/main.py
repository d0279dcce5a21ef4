"""Ray job entry point: `causalprint run` (run with python jobs/main.py ... or submit with ray job submit)."""

import sys

from causalprint.cli import main

if __name__ == "__main__":
    sys.exit(main(["run", *sys.argv[1:]]))
