"""Ray job entry point: `causalprint enrol` (run with python jobs/enrol.py IMAGES --source NAME --family F ...)."""

import sys

from causalprint.cli import main

if __name__ == "__main__":
    sys.exit(main(["enrol", *sys.argv[1:]]))
