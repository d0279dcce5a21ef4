"""docs/operations.md says only what is real: every `causalprint` command parses with the command line's own
parser (and names presets that exist), every script, manifest and file it names is in the repository, every job
it submits is a file of jobs/, and its Python and YAML blocks are valid."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import mlflow
import pytest
import yaml

from causalprint.cli import build_parser

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "operations.md"
PRESETS = REPO / "platform" / "causalprint" / "presets"


def blocks(language: str) -> list[str]:
    return re.findall(rf"^ *```{language}\n(.*?)^ *```", DOC.read_text(), flags=re.S | re.M)


def shell_commands() -> list[list[str]]:
    """The commands of the bash blocks, continuation lines joined, comments and heredoc bodies dropped."""
    commands = []
    for block in blocks("bash"):
        lines, heredoc = [], None
        for line in block.splitlines():
            if heredoc is not None:
                if line.strip() == heredoc:
                    heredoc = None
                continue
            if match := re.search(r"<<'?(\w+)'?", line):
                heredoc = match.group(1)
            lines.append(line)
        for command in re.sub(r"\\\n\s*", " ", "\n".join(lines)).splitlines():
            words = shlex.split(command, comments=True)
            if words:
                commands.append(words[: words.index(">")] if ">" in words else words)
    return commands


def test_the_doc_has_commands_to_check() -> None:
    names = {Path(c[0]).name for c in shell_commands()}
    assert {"causalprint", "bash", "kubectl", "docker"} <= names


@pytest.mark.parametrize(
    "words", [c for c in shell_commands() if Path(c[0]).name == "causalprint"], ids=lambda c: " ".join(c[1:3])
)
def test_every_causalprint_command_parses(words: list[str]) -> None:
    try:
        args = build_parser().parse_args(words[1:])
    except SystemExit as exc:  # argparse's way of refusing
        pytest.fail(f"`{shlex.join(words)}` does not parse: exit {exc.code}")
    preset = getattr(args, "preset", None)
    kind = PRESETS / words[1]
    if preset and "--preset" in words and kind.is_dir():
        assert (kind / f"{preset}.yaml").is_file(), f"no preset {preset} for {words[1]}"


def test_every_script_manifest_and_job_it_names_exists() -> None:
    for words in shell_commands():
        program = Path(words[0]).name
        if program == "bash":
            assert (REPO / words[1]).is_file(), words
            if words[1] == "infra/ray/submit.sh":  # JOB ARGS: a causalprint command, after the script's flags
                rest = words[2:]
                while rest and rest[0].startswith("--"):
                    rest = rest[2:] if rest[0] == "--address" else rest[1:]
                try:
                    build_parser().parse_args(rest)
                except SystemExit as exc:
                    pytest.fail(f"`{shlex.join(words)}` submits a job that does not parse: exit {exc.code}")
        for flag in ("-f", "--config"):
            if program in ("kubectl", "docker") and flag in words:
                assert (REPO / words[words.index(flag) + 1]).is_file(), words
        if program in ("serve",) and "deploy" in words:
            assert (REPO / words[words.index("deploy") + 1]).is_file(), words


def test_every_repository_path_in_the_doc_exists() -> None:
    text = DOC.read_text()
    paths = set(re.findall(r"(?<![\w/.])((?:infra|jobs|serve|docs|tests|platform)/[\w./-]*\w)", text))
    assert paths
    missing = sorted(p for p in paths if not (REPO / p).exists())
    assert not missing, f"docs/operations.md names paths that do not exist: {missing}"


def test_the_python_and_yaml_blocks_are_valid() -> None:
    for match in re.finditer(r"<<'EOF'\n(.*?)^EOF$", DOC.read_text(), flags=re.S | re.M):
        code = match.group(1)
        compile(code, "docs/operations.md", "exec")
        for method in re.findall(r"client\.(\w+)\(", code):
            assert hasattr(mlflow.MlflowClient, method), f"MlflowClient has no {method}"
    (keys,) = blocks("yaml")
    records = yaml.safe_load(keys)["serve"]["auth"]["keys"]
    assert [set(r) for r in records] == [{"id", "role", "hash"}] * 2


def test_the_readme_links_the_doc_in_one_line() -> None:
    readme = (REPO / "README.md").read_text()
    assert len([line for line in readme.splitlines() if "docs/operations.md" in line]) == 1
