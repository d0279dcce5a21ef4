"""infra/ray: `ray job submit` for a file of jobs/ with the runtime_env of infra/ray/runtime_env.yaml. The
script's --print mode shows the command it would run; no cluster is started here."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

import pytest
import yaml
from ray.runtime_env import RuntimeEnv

REPO = Path(__file__).resolve().parents[2]
SUBMIT = REPO / "infra" / "ray" / "submit.sh"
RUNTIME_ENV = REPO / "infra" / "ray" / "runtime_env.yaml"


def submit(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(SUBMIT), *args], capture_output=True, text=True, timeout=30,
                          env={"PATH": "/usr/bin:/bin"})


def test_the_runtime_env_is_valid_and_ships_the_library_without_local_state() -> None:
    runtime_env = yaml.safe_load(RUNTIME_ENV.read_text())
    assert set(runtime_env) <= RuntimeEnv.known_fields
    RuntimeEnv(**runtime_env)  # Ray's own type checks
    assert runtime_env["working_dir"] == "."
    for module in runtime_env["py_modules"]:
        assert (REPO / module / "__init__.py").is_file(), module
    assert {".git", ".venv", ".causalprint", "tests"} <= set(runtime_env["excludes"])
    assert all(isinstance(v, str) for v in runtime_env["env_vars"].values())


@pytest.mark.parametrize("job", sorted(p.stem for p in (REPO / "jobs").glob("*.py")))
def test_every_job_submits_with_its_arguments(job: str) -> None:
    done = submit("--address", "http://127.0.0.1:8265", "--print", job, "--preset", "tiny", "--set", "a.b=c d")
    assert done.returncode == 0, done.stderr
    words = shlex.split(done.stdout)
    assert Path(words[0]).name == "ray" and words[1:3] == ["job", "submit"]
    assert words[words.index("--address") + 1] == "http://127.0.0.1:8265"
    assert words[words.index("--runtime-env") + 1] == "infra/ray/runtime_env.yaml"
    entry = words[words.index("--") + 1:]
    assert entry == ["python", f"jobs/{job}.py", "--preset", "tiny", "--set", "a.b=c d"]
    assert (REPO / entry[1]).is_file()


def test_an_unknown_job_or_none_is_refused_with_the_list() -> None:
    for args in (("nope",), ()):
        done = submit(*args)
        assert done.returncode == 2 and "main" in done.stderr and "scan" in done.stderr, done.stderr
