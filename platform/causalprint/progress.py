"""Periodic progress logs with a rate and the time left, for work that has no Ray progress bar."""

from __future__ import annotations

import logging
import time

log = logging.getLogger("causalprint.progress")


class ProgressLogger:
    """Log ``task: done/total (pct) rate/s, eta`` at most every ``every_s`` seconds, and once at the end."""

    def __init__(self, task: str, total: int, unit: str = "it", every_s: float = 10.0) -> None:
        self.task, self.total, self.unit, self.every_s = task, max(int(total), 1), unit, every_s
        self.done = 0
        self._start = self._last = time.monotonic()

    def update(self, n: int = 1, **metrics: float) -> None:
        self.done += n
        now = time.monotonic()
        if now - self._last >= self.every_s or self.done >= self.total:
            self._last = now
            self._emit(now, metrics)

    def _emit(self, now: float, metrics: dict[str, float]) -> None:
        elapsed = max(now - self._start, 1e-9)
        rate = self.done / elapsed
        eta = (self.total - self.done) / rate if rate > 0 else float("inf")
        extra = " ".join(f"{k}={v:.4g}" for k, v in metrics.items())
        log.info(
            "%s: %d/%d (%.0f%%) %.2f %s/s, elapsed %.0fs, eta %.0fs %s",
            self.task,
            self.done,
            self.total,
            100.0 * self.done / self.total,
            rate,
            self.unit,
            elapsed,
            eta,
            extra,
        )

    @property
    def elapsed_s(self) -> float:
        return time.monotonic() - self._start
