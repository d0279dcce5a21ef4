"""infra/ray: `ray job submit` of jobs/run.py (which runs `causalprint JOB ARGS`) with the runtime_env of
infra/ray/runtime_env.yaml. The script's --print mode shows the command it would run; no cluster is started."""

from __future__ import annotations

import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from ray.runtime_env import RuntimeEnv

REPO = Path(__file__).resolve().parents[2]
SUBMIT = Path("infra") / "ray" / "submit.sh"
RUNTIME_ENV = REPO / "infra" / "ray" / "runtime_env.yaml"


def submit(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(repo / SUBMIT), *args], capture_output=True, text=True, timeout=120, env={"PATH": "/usr/bin:/bin"}
    )


@pytest.fixture()
def checkout(tmp_path: Path) -> Path:
    """The script in a checkout without .venv: it then leaves the job's name to the cluster's command line."""
    for path in (SUBMIT, Path("jobs") / "run.py"):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / path, tmp_path / path)
    return tmp_path


def test_the_runtime_env_is_valid_and_ships_the_library_without_local_state() -> None:
    runtime_env = yaml.safe_load(RUNTIME_ENV.read_text())
    assert set(runtime_env) <= RuntimeEnv.known_fields
    RuntimeEnv(**runtime_env)  # Ray's own type checks
    assert runtime_env["working_dir"] == "."
    for module in runtime_env["py_modules"]:
        assert (REPO / module / "__init__.py").is_file(), module
    assert {".git", ".venv", ".causalprint", "tests"} <= set(runtime_env["excludes"])
    assert all(isinstance(v, str) for v in runtime_env["env_vars"].values())


@pytest.mark.parametrize(
    "job", [["run", "--preset", "demo"], ["scan", "inbox", "--set", "a.b=c d"], ["zoo", "build", "--preset", "tiny"]]
)
def test_a_job_submits_jobs_run_py_with_its_arguments(checkout: Path, job: list[str]) -> None:
    done = submit(checkout, "--address", "http://127.0.0.1:8265", "--print", *job)
    assert done.returncode == 0, done.stderr
    words = shlex.split(done.stdout)
    assert words[0] == "ray" and words[1:3] == ["job", "submit"]
    assert words[words.index("--address") + 1] == "http://127.0.0.1:8265"
    assert words[words.index("--runtime-env") + 1] == "infra/ray/runtime_env.yaml"
    assert words[words.index("--") + 1 :] == ["python", "jobs/run.py", *job]


def test_no_job_is_refused(checkout: Path) -> None:
    for args in ((), ("--print",), ("--print", "--preset", "demo")):
        done = submit(checkout, *args)
        assert done.returncode == 2 and "JOB is a causalprint command" in done.stderr, done.stderr


@pytest.mark.slow
def test_with_a_local_venv_an_unknown_job_is_refused_before_submitting() -> None:
    known = submit(REPO, "--print", "run", "--preset", "demo")
    assert known.returncode == 0 and "jobs/run.py run --preset demo" in known.stdout, known.stderr
    unknown = submit(REPO, "--print", "nope")
    assert unknown.returncode == 2 and "no job named nope" in unknown.stderr, unknown.stderr
