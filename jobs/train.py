"""Ray job entry point: `causalprint train` (run with python jobs/train.py ... or submit with ray job submit)."""

import sys

from causalprint.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
