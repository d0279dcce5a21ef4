"""Ray job entry point: `causalprint study` (run with python jobs/study.py ... or submit with ray job submit)."""

import sys

from causalprint.cli import main

if __name__ == "__main__":
    sys.exit(main(["study", *sys.argv[1:]]))
