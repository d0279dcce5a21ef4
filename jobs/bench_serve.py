"""Ray job entry point: `causalprint bench serve` (the Serve load test; python jobs/bench_serve.py --preset tiny
--results docs/results.md). It sends traffic to 127.0.0.1 only, bounded in requests and time."""

import sys

from causalprint.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", "serve", *sys.argv[1:]]))
