"""How the command reports a failure: one escaped line of at most :data:`MAX_MESSAGE` characters and an exit code.

A refusal the user can fix (config, storage, model, paths, the environment) exits 2; Ctrl-C exits 130; anything
else is a defect and exits 1. None prints a traceback unless ``--debug`` is given.
"""

from __future__ import annotations

import os
import stat

from causalprint.config import ConfigError
from causalprint.text import cut, printable

MAX_MESSAGE = 1000
USAGE = 2
DEFECT = 1
INTERRUPTED = 130  # 128 + SIGINT, what shells report for Ctrl-C


def one_line(text: str) -> str:
    """A multi-line message on one line (its lines joined by ``; ``), escaped and cut."""
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    return cut(printable("; ".join(lines).replace(":;", ":")), MAX_MESSAGE)


def _is_user_error(exc: BaseException) -> bool:
    # OSError: an unreachable endpoint, a permission, a full disk: the environment, not the program.
    # MLflow's own exceptions name a registry object the user gave (an unknown run or model).
    return isinstance(exc, (ValueError, OSError)) or type(exc).__module__.split(".")[0] == "mlflow"


def failure(exc: BaseException, refusal: bool = False) -> tuple[str, int]:
    """The printed line and the exit code of ``exc``; ``refusal`` marks one of the platform's own refusals."""
    if refusal:
        return one_line(f"causalprint: {exc}"), USAGE
    name = type(exc).__name__
    if _is_user_error(exc):
        return one_line(f"causalprint: {name}: {exc}"), USAGE
    return one_line(f"causalprint: unexpected {name}: {exc} (rerun with --debug for the traceback)"), DEFECT


def interrupted(exc: KeyboardInterrupt) -> str:
    """What Ctrl-C prints: a scan's own message (images in the report), else a plain one."""
    return one_line(f"causalprint: {exc}" if str(exc) else "causalprint: interrupted")


def check_output_file(path: str, flag: str) -> None:
    """Refuse, before any work, an output file that cannot be written: a folder, a special file, a missing
    folder to write it in."""
    if os.path.lexists(path):
        mode = os.stat(path).st_mode if os.path.exists(path) else 0
        if not stat.S_ISREG(mode):
            what = "a folder" if stat.S_ISDIR(mode) else "not a regular file"
            raise ConfigError(f"{flag} {path}: is {what}; give a Markdown file's path")
        return
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise ConfigError(f"{flag} {path}: the folder {folder} does not exist")
