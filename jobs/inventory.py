"""Ray job entry point: `causalprint inventory` (run with python jobs/inventory.py ... or submit with ray job submit)."""

import sys

from causalprint.cli import main

if __name__ == "__main__":
    sys.exit(main(["inventory", *sys.argv[1:]]))
