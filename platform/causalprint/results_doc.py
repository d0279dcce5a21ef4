"""Write a benchmark's figures into ``docs/results.md`` as a section keyed by name, with its exact command.

Each section also records what wrote it: the hash of every preset the command read and the code version. A
section whose recorded preset no longer matches the preset in the tree is stale (:func:`stale_sections`, which a
test runs on ``docs/results.md``) unless it says so itself, on a line that begins ``Stale:`` (:func:`mark_stale`);
rerunning the section's command rewrites it, and the mark goes with the old figures.
"""

from __future__ import annotations

import os
import platform
import re
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

from causalprint.presets import PRESET_ROOT, preset_hash, presets_read

_SECTION = re.compile(r"<!-- BEGIN (?P<key>[^ ]+) -->\n(?P<body>.*?)<!-- END (?P=key) -->", re.S)
_PRESETS_LINE = re.compile(r"^Presets: (?P<list>.*?)\. Code: ", re.M)
_PRESET = re.compile(r"`(?P<preset>[A-Za-z0-9_-]+/[A-Za-z0-9_-]+)` \(sha256 `(?P<hash>[0-9a-f]+)`\)")
_COMMAND = re.compile(r"^Command: `(?P<command>[^`]*)`", re.M)
STALE_PREFIX = "Stale:"


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


def code_version() -> str:
    """The git commit of the code that is running, ``+ uncommitted changes`` when its code differs from that
    commit (the library and the jobs; documents do not count); the package version outside a git checkout."""
    from causalprint import __version__

    here = Path(__file__).resolve().parent
    try:

        def git(*argv: str) -> str:
            return subprocess.run(
                ["git", *argv], cwd=here, capture_output=True, text=True, check=True, timeout=10
            ).stdout.strip()

        top = git("rev-parse", "--show-toplevel")
        commit = git("rev-parse", "--short=12", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no", "--", ".", os.path.join(top, "jobs"))
    except (OSError, subprocess.SubprocessError):
        return f"causalprint {__version__} (no git checkout)"
    return f"{commit}" + (" + uncommitted changes" if dirty else "")


def provenance_line(presets: Mapping[str, str] | None = None) -> str:
    """The line that says what wrote a section: each preset read (``<kind>/<name>`` and its hash) and the code."""
    presets = presets_read() if presets is None else presets
    listed = ", ".join(f"`{name}` (sha256 `{digest}`)" for name, digest in presets.items()) or "none"
    return f"Presets: {listed}. Code: `{code_version()}`."


def update_section(
    path: str | Path,
    key: str,
    title: str,
    body: str,
    command: str | None = None,
    presets: Mapping[str, str] | None = None,
) -> None:
    """Replace (or append) the section ``key`` of the results file, atomically. ``presets`` (``<kind>/<name>``
    -> hash) are the presets the figures come from; by default, every preset this process has read."""
    path = Path(path)
    text = (
        path.read_text()
        if path.exists()
        else "# Results\n\nEvery figure here is written by the command shown with it.\n"
    )
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    section = (
        f"<!-- BEGIN {key} -->\n## {title}\n\n"
        f"Command: `{command or invoked_command()}`\n\n"
        f"Machine: {machine_summary()}. Written {stamp}.\n\n{provenance_line(presets)}\n\n"
        f"{body.strip()}\n<!-- END {key} -->"
    )
    pattern = re.compile(rf"<!-- BEGIN {re.escape(key)} -->.*?<!-- END {re.escape(key)} -->", re.S)
    text = pattern.sub(lambda _: section, text) if pattern.search(text) else text.rstrip() + "\n\n" + section + "\n"
    _write(path, text)


def mark_stale(path: str | Path, key: str, reason: str) -> None:
    """Say in section ``key`` that its figures are stale, and why, on a ``Stale:`` line below its title (which
    also names the command that refreshes it). Rerunning that command rewrites the section without the mark."""
    path = Path(path)
    text = path.read_text()
    match = next((m for m in _SECTION.finditer(text) if m["key"] == key), None)
    if match is None:
        raise KeyError(f"no section {key!r} in {path}")
    body = match["body"]
    if any(line.startswith(STALE_PREFIX) for line in body.splitlines()):
        return
    command = _COMMAND.search(body)
    rerun = f" Rerun `{command['command']}` to refresh it." if command else ""
    title, _, rest = body.partition("\n")
    body = f"{title}\n\n{STALE_PREFIX} {reason.strip()}{rerun}\n{rest}"
    _write(path, text[: match.start("body")] + body + text[match.end("body") :])


def stale_sections(text: str, preset_root: str | Path = PRESET_ROOT) -> list[str]:
    """One line per generated section of a results document whose figures may no longer hold, and does not say
    so: it records no preset hash, or a preset it records is gone or has changed since. A section with a
    ``Stale:`` line is left out (it says so itself)."""
    problems = []
    for match in _SECTION.finditer(text):
        key, body = match["key"], match["body"]
        if any(line.startswith(STALE_PREFIX) for line in body.splitlines()):
            continue
        command = _COMMAND.search(body)
        fix = (
            f"rerun `{command['command']}`" if command else "rerun its command"
        ) + " or mark it stale (causalprint.results_doc.mark_stale)"
        line = _PRESETS_LINE.search(body)
        if line is None:
            problems.append(f"section {key}: records no preset hash; {fix}")
            continue
        for found in _PRESET.finditer(line["list"]):
            file = Path(preset_root) / f"{found['preset']}.yaml"
            if not file.is_file():
                problems.append(f"section {key}: preset {found['preset']} is gone; {fix}")
            elif (now := preset_hash(file)) != found["hash"]:
                problems.append(
                    f"section {key}: preset {found['preset']} changed since it was written "
                    f"(sha256 {found['hash']}, now {now}); {fix}"
                )
    return problems


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as tmp:
        tmp.write(text)
    os.replace(tmp.name, path)
