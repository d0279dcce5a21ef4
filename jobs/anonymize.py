"""Ray job entry point: `causalprint anonymize` (python jobs/anonymize.py SOURCE --out PREFIX ... or submit with
ray job submit)."""

import sys

from causalprint.cli import main

if __name__ == "__main__":
    sys.exit(main(["anonymize", *sys.argv[1:]]))
