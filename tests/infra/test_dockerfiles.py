"""infra/docker: every path the Dockerfiles COPY exists and survives the .dockerignore; the images install the
package with the pinned versions, as a user that is not root. No container runtime runs on this machine, so the
images are not built here (docs/operations.md says so)."""

from __future__ import annotations

import fnmatch
import json
import shlex
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCKER = REPO / "infra" / "docker"
VARIANTS = ("cpu", "cuda")


def instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with continuation lines joined and comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for line in dockerfile.read_text().splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue
        pending += (" " if pending else "") + stripped.removesuffix("\\").strip()
        if not stripped.endswith("\\"):
            word, _, rest = pending.partition(" ")
            out.append((word.upper(), rest.strip()))
            pending = ""
    assert not pending, f"{dockerfile.name} ends inside a continued line"
    return out


def copy_sources(arguments: str) -> list[str]:
    """The source paths of one COPY (shell or JSON form), flags dropped; the last word is the destination."""
    words = json.loads(arguments) if arguments.startswith("[") else shlex.split(arguments)
    words = [w for w in words if not w.startswith("--")]
    assert len(words) >= 2, f"COPY {arguments!r} needs a source and a destination"
    return words[:-1]


def ignored(path: str, patterns: list[str]) -> bool:
    """Whether a context path (or a folder above it) matches a .dockerignore pattern (no ! exceptions used)."""
    parts = path.strip("/").split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for pattern in patterns:
        pattern = pattern.strip("/")
        for prefix in prefixes:
            if fnmatch.fnmatch(prefix, pattern) or (
                pattern.startswith("**/") and fnmatch.fnmatch(prefix.split("/")[-1], pattern[3:])
            ):
                return True
    return False


def ignore_patterns(variant: str) -> list[str]:
    lines = (DOCKER / f"Dockerfile.{variant}.dockerignore").read_text().splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    assert not [p for p in patterns if p.startswith("!")], "exceptions are not handled by this test"
    return patterns


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_copied_path_exists_and_is_in_the_build_context(variant: str) -> None:
    steps = instructions(DOCKER / f"Dockerfile.{variant}")
    patterns = ignore_patterns(variant)
    sources = [s for word, args in steps if word == "COPY" and "--from" not in args for s in copy_sources(args)]
    assert sources, "the image copies the repository's files"
    for source in sources:
        assert (REPO / source).exists(), f"Dockerfile.{variant} copies {source}, which is not in the repository"
        assert not ignored(source, patterns), f"Dockerfile.{variant} copies {source}, which its .dockerignore drops"
    # pip install . needs what pyproject.toml names, copied before the install runs.
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    install = next(i for i, (word, args) in enumerate(steps) if word == "RUN" and "pip install" in args)
    before = {s for word, args in steps[:install] if word == "COPY" for s in copy_sources(args)}
    assert {"pyproject.toml", project["readme"], "platform", "infra/constraints.txt"} <= before


def test_the_ignore_files_keep_out_the_local_state_and_keep_what_is_copied() -> None:
    for variant in VARIANTS:
        patterns = ignore_patterns(variant)
        for local in (".venv", ".git", ".causalprint", "platform/causalprint/__pycache__"):
            assert ignored(local, patterns), f"{local} would be sent to the build"
        assert not ignored("README.md", patterns)


@pytest.mark.parametrize("variant", VARIANTS)
def test_the_image_is_pinned_and_runs_as_a_user(variant: str) -> None:
    steps = instructions(DOCKER / f"Dockerfile.{variant}")
    (base,) = [args for word, args in steps if word == "FROM"]
    name, _, tag = base.partition(":")
    assert tag and tag != "latest", f"FROM {base}: pin a tag"
    # The Python of the image is one the package supports (requires-python).
    assert name == "python" and tag.startswith(("3.11", "3.12")), base
    install = " ".join(args for word, args in steps if word == "RUN" and "pip install" in args)
    assert "constraints" in install and " . " in f"{install} ", "the package, with the pinned versions"
    users = [args for word, args in steps if word == "USER"]
    assert users and users[-1] not in ("root", "0"), "the image runs as root"
    if variant == "cpu":
        assert "download.pytorch.org/whl/cpu" in install  # the constraints pin torch's +cpu build
    else:
        assert "grep -v '^torch=='" in install and '"torch==2.13.0"' in install
    pinned = [
        line for line in (REPO / "infra" / "constraints.txt").read_text().splitlines() if line.startswith("torch==")
    ]
    assert pinned == ["torch==2.13.0+cpu"], "the CUDA image replaces exactly this pin: update both Dockerfiles"
