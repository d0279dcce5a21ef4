"""``causalprint serve``: start the Serve application (attribution, verification, enrolment, the web page), print
its URL and serve until Ctrl-C. The application is :mod:`causalprint.serving.app`."""

from __future__ import annotations

from causalprint.serving.config import ServeJobConfig

CONFIG = ServeJobConfig


def run(config: ServeJobConfig) -> int:
    """Serve until interrupted; returns the exit code."""
    from causalprint.serving.launcher import serve_forever

    return serve_forever(config)


def describe(code: int) -> str:
    return ""


def exit_code(code: int) -> int:
    return code
