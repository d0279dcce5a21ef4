"""Ray job entry point: `causalprint scan` (run with python jobs/scan.py SOURCE ... or submit with ray job submit)."""

import sys

from causalprint.cli import main

if __name__ == "__main__":
    sys.exit(main(["scan", *sys.argv[1:]]))
