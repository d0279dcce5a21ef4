"""Ray job entry point: `causalprint ssl train` (run with python jobs/train_ssl.py ... or submit with ray job submit)."""

import sys

from causalprint.cli import main

if __name__ == "__main__":
    sys.exit(main(["ssl", "train", *sys.argv[1:]]))
