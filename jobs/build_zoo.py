"""Ray job entry point: `causalprint zoo build` (run with python jobs/build_zoo.py ... or submit with ray job submit)."""

import sys

from causalprint.cli import main

if __name__ == "__main__":
    sys.exit(main(["zoo", "build", *sys.argv[1:]]))
