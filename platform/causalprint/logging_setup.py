"""Logging for jobs and the CLI: causalprint's own lines on the terminal, everything in the log file.

Quiet by default: third-party records below ERROR, Python warnings (Pillow's ``DecompressionBombWarning`` on a
file intake refuses anyway, say) and progress bars (Ray Data's, MLflow's downloads) go to the log file only;
``verbose`` shows them on the terminal too. The file is ``.causalprint/causalprint.log`` below the working
folder, or ``CAUSALPRINT_LOG_FILE``.
"""

from __future__ import annotations

import logging
import os
import sys

LOG_FILE_ENV = "CAUSALPRINT_LOG_FILE"
DEFAULT_LOG_FILE = os.path.join(".causalprint", "causalprint.log")
OWN_LOGGERS = ("causalprint", "__main__")
# Progress bars: off unless verbose (set only where the user has not chosen).
QUIET_ENV = {"RAY_DATA_DISABLE_PROGRESS_BARS": "1", "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}
RAY_DATA_CONFIG_ENV = "RAY_DATA_LOGGING_CONFIG"
_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class OwnOrSevere(logging.Filter):
    """Passes causalprint's own records, and anyone's at ERROR or above."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.name.split(".")[0] in OWN_LOGGERS or record.levelno >= logging.ERROR


_configured = False


def adopt_logger(name: str) -> None:
    """Send logger ``name``'s records through :func:`configure_logging`'s routing, when it has run: a library that
    installs its own terminal handler at import (Ray does) would otherwise print past the filter."""
    if _configured:
        logger = logging.getLogger(name)
        for handler in logger.handlers[:]:
            logger.removeHandler(handler)
        logger.propagate = True
        if logging.NOTSET < logger.level < logging.INFO:  # Ray Data's own config logs DEBUG: pages of stats
            logger.setLevel(logging.INFO)


def log_file_path() -> str:
    return os.environ.get(LOG_FILE_ENV) or DEFAULT_LOG_FILE


def configure_logging(level: int = logging.INFO, *, verbose: bool = False, log_file: str | None = None) -> str | None:
    """Route records (see the module docstring); returns the log file in use, or None if it cannot be opened."""
    console = logging.StreamHandler(sys.stderr)
    if not verbose:
        console.addFilter(OwnOrSevere())
    handlers: list[logging.Handler] = [console]
    wanted = log_file or log_file_path()
    path: str | None = wanted
    try:
        os.makedirs(os.path.dirname(os.path.abspath(wanted)), exist_ok=True)
        handlers.append(logging.FileHandler(wanted, encoding="utf-8"))
    except OSError:
        path = None  # a read-only working folder: the terminal alone
    logging.basicConfig(level=level, format=_FORMAT, handlers=handlers, force=True)
    global _configured
    _configured = True
    # Ray Data configures its logger when ray.data is imported, from this file if the variable names one.
    os.environ.setdefault(RAY_DATA_CONFIG_ENV, os.path.join(os.path.dirname(__file__), "ray_data_logging.yaml"))
    # MLflow gives its logger a terminal handler of its own at import unless told not to; one imported already is
    # adopted like Ray's.
    os.environ.setdefault("MLFLOW_CONFIGURE_LOGGING", "false")
    for name in ("ray", "ray.data", "mlflow"):
        if name in sys.modules:
            adopt_logger(name)
    logging.captureWarnings(True)  # warnings become records of "py.warnings": the file, or the terminal if verbose
    for noisy in ("botocore", "urllib3", "s3transfer", "filelock"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if not verbose:
        for key, value in QUIET_ENV.items():
            os.environ.setdefault(key, value)
    return path
