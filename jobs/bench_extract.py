"""Ray job entry point: `causalprint bench extract` (run with python jobs/bench_extract.py ... or submit with ray job submit)."""

import sys

from causalprint.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", "extract", *sys.argv[1:]]))
