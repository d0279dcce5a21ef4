"""Ray job entry point: `causalprint reference train` (run with python jobs/pretrain_reference.py ... or submit with ray job submit)."""

import sys

from causalprint.cli import main

if __name__ == "__main__":
    sys.exit(main(["reference", "train", *sys.argv[1:]]))
