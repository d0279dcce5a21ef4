"""Ray job entry point: `causalprint probe` (run with python jobs/probe_features.py ... or submit with ray job submit)."""

import sys

from causalprint.cli import main

if __name__ == "__main__":
    sys.exit(main(["probe", *sys.argv[1:]]))
