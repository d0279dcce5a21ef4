"""Ray job entry point: `causalprint extract` (run with python jobs/extract.py ... or submit with ray job submit)."""

import sys

from causalprint.cli import main

if __name__ == "__main__":
    sys.exit(main(["extract", *sys.argv[1:]]))
