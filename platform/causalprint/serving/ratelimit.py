"""A token bucket per caller: ``burst`` requests at once, then ``rate`` per second."""

from __future__ import annotations

import time
from collections.abc import Callable


class RateLimiter:
    """``allow(caller)`` spends one token and answers 0.0, or answers the seconds until one is free.

    State is per process (per ingress replica): the limit a caller meets is this rate times the replicas.
    Idle callers are forgotten once their bucket is full again, so memory stays bounded by active callers.
    """

    def __init__(self, per_minute: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = per_minute / 60.0
        self.burst = float(burst)
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # caller -> (tokens, at)

    def allow(self, caller: str) -> float:
        now = self._clock()
        tokens, at = self._buckets.get(caller, (self.burst, now))
        tokens = min(self.burst, tokens + (now - at) * self.rate)
        if tokens < 1.0:
            self._buckets[caller] = (tokens, now)
            return (1.0 - tokens) / self.rate
        self._buckets[caller] = (tokens - 1.0, now)
        if len(self._buckets) > 10_000:
            self._forget(now)
        return 0.0

    def _forget(self, now: float) -> None:
        full = [c for c, (t, at) in self._buckets.items() if t + (now - at) * self.rate >= self.burst]
        for caller in full:
            del self._buckets[caller]
