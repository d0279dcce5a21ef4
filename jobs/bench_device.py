"""Ray-free job entry point: `causalprint bench device` (python jobs/bench_device.py --preset bench ...)."""

import sys

from causalprint.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", "device", *sys.argv[1:]]))
