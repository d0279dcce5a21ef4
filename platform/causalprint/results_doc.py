"""Write a benchmark's figures into ``docs/results.md`` as a section keyed by name, with its exact command."""

from __future__ import annotations

import os
import platform
import re
import shlex
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path


def machine_summary() -> str:
    """One line that says which machine produced a number."""
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    cpu = platform.processor() or platform.machine()
    return f"{os.cpu_count()} CPU cores ({cpu}), {gpu}, torch {torch.__version__}, Python {platform.python_version()}"


def invoked_command() -> str:
    """The command line that is running, as a user would type it."""
    argv = list(sys.argv)
    prog = Path(argv[0]).name
    head = "causalprint" if prog == "causalprint" else f"python {os.path.relpath(argv[0])}"
    return " ".join([head, *map(shlex.quote, argv[1:])])


def update_section(path: str | Path, key: str, title: str, body: str, command: str | None = None) -> None:
    """Replace (or append) the section ``key`` of the results file, atomically."""
    path = Path(path)
    text = path.read_text() if path.exists() else "# Results\n\nEvery figure here is written by the command shown with it.\n"
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    section = (
        f"<!-- BEGIN {key} -->\n## {title}\n\n"
        f"Command: `{command or invoked_command()}`\n\n"
        f"Machine: {machine_summary()}. Written {stamp}.\n\n{body.strip()}\n<!-- END {key} -->"
    )
    pattern = re.compile(rf"<!-- BEGIN {re.escape(key)} -->.*?<!-- END {re.escape(key)} -->", re.S)
    text = pattern.sub(lambda _: section, text) if pattern.search(text) else text.rstrip() + "\n\n" + section + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as tmp:
        tmp.write(text)
    os.replace(tmp.name, path)
