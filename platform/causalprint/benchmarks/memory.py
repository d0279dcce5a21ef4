"""Peak resident memory of this process and of its Ray workers, sampled in the background."""

from __future__ import annotations

import threading

import psutil


class PeakMemory:
    """Context manager: the peak of (this process + its descendants + Ray worker processes) RSS, in bytes."""

    def __init__(self, interval_s: float = 0.2) -> None:
        self.interval_s = interval_s
        self.peak_bytes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def current_bytes() -> int:
        me = psutil.Process()
        procs = {me.pid: me, **{p.pid: p for p in me.children(recursive=True)}}
        for proc in psutil.process_iter(["name", "cmdline"]):
            cmd = " ".join(proc.info.get("cmdline") or [])
            if cmd.startswith("ray::") or "default_worker.py" in cmd:
                procs[proc.pid] = proc
        total = 0
        for proc in procs.values():
            try:
                total += proc.memory_info().rss
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_bytes = max(self.peak_bytes, self.current_bytes())
            self._stop.wait(self.interval_s)

    def __enter__(self) -> PeakMemory:
        self.peak_bytes = self.current_bytes()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_bytes = max(self.peak_bytes, self.current_bytes())
