"""The layering rule of docs/architecture.md: a module imports only from its own layer and the layers below.

Every import of every module under ``platform/causalprint`` is read with ``ast`` (imports inside functions and
``TYPE_CHECKING`` blocks count too) and mapped to a layer by its package. Layers, lowest first::

    base < storage < data < engine < model < serving < jobs < tools

``serving`` answers with the model layer and never imports a job; a job may start the service
(``causalprint serve``, the Serve load test).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "platform" / "causalprint"
ARCHITECTURE = ROOT / "docs" / "architecture.md"

RANK = {"base": 0, "storage": 1, "data": 2, "engine": 3, "model": 4, "serving": 5, "jobs": 6, "tools": 7}

# Package (or module) -> layer. The longest matching dotted prefix wins, so a module added to a package, or moved
# within it, keeps the package's layer. Keep this table and the one in docs/architecture.md the same.
LAYERS = {
    "causalprint": "base",
    "causalprint.config": "base",
    "causalprint.text": "base",
    "causalprint.registry": "base",
    "causalprint.seeding": "base",
    "causalprint.progress": "base",
    "causalprint.logging_setup": "base",
    "causalprint.presets": "base",
    "causalprint.results_doc": "base",
    "causalprint.storage": "storage",
    "causalprint.runtime": "storage",
    "causalprint.tracking.mlflow_setup": "storage",
    "causalprint.data": "data",
    "causalprint.imaging": "data",
    "causalprint.perturbations": "data",
    "causalprint.inventory": "data",
    "causalprint.diffusion": "engine",
    "causalprint.residual": "engine",
    "causalprint.features": "engine",
    "causalprint.extraction": "engine",
    "causalprint.zoo": "engine",
    "causalprint.attribution": "model",
    "causalprint.baselines": "model",
    "causalprint.tracking": "model",
    "causalprint.evaluation": "model",
    "causalprint.plots": "model",
    "causalprint.scan": "model",
    "causalprint.enrolment": "model",
    "causalprint.anonymization": "model",
    "causalprint.jobs": "jobs",
    "causalprint.benchmarks": "jobs",
    "causalprint.serving": "serving",
    "causalprint.cli": "tools",
    "causalprint.cli_errors": "tools",
}

# (importing module, imported package or module) -> why it is allowed for now. Keep this list short: fix an
# offending import where that is small, and remove its entry once it is fixed.
EXCEPTIONS: dict[tuple[str, str], str] = {}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer_of(name: str) -> str | None:
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        layer = LAYERS.get(".".join(parts[:end]))
        if layer is not None:
            return layer
    return None


PLUGIN_TARGET = re.compile(r"(causalprint(?:\.\w+)+):\w+")


def _submodule(package: str, name: str) -> str:
    """``from package import name``: the module ``package.name`` when there is one, else ``package``."""
    candidate = PACKAGE.parent.joinpath(*f"{package}.{name}".split("."))
    return f"{package}.{name}" if candidate.with_suffix(".py").is_file() or candidate.is_dir() else package


def imported(module: str, path: Path) -> list[tuple[str, int]]:
    """Every ``causalprint`` module that ``module`` imports, with its line; relative imports resolved, and a
    plugin registry's ``"causalprint.module:attribute"`` target counted as an import of that module."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            found += [(_submodule(base, alias.name), node.lineno) for alias in node.names]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            target = PLUGIN_TARGET.fullmatch(node.value)
            if target:
                found.append((target.group(1), node.lineno))
    return [(name, line) for name, line in found if name == "causalprint" or name.startswith("causalprint.")]


def may_import(mine: str, theirs: str) -> bool:
    """Whether a module of layer ``mine`` may import one of layer ``theirs``: its own layer, or one below."""
    return theirs == mine or RANK[theirs] < RANK[mine]


def modules() -> list[tuple[str, Path]]:
    return sorted((module_name(p), p) for p in PACKAGE.rglob("*.py"))


def _exception(module: str, target: str) -> tuple[str, str] | None:
    for m, t in EXCEPTIONS:
        if module == m and (target == t or target.startswith(t + ".")):
            return m, t
    return None


def test_every_entry_of_the_table_exists() -> None:
    present = {m for m, _ in modules()}
    gone = sorted(name for name in LAYERS if not any(m == name or m.startswith(name + ".") for m in present))
    assert not gone, f"LAYERS maps what no longer exists, remove it here and in {ARCHITECTURE.name}: {gone}"


def test_every_module_has_a_layer() -> None:
    missing = sorted(m for m, _ in modules() if layer_of(m) is None)
    assert not missing, f"modules of no layer: {missing}; add their package to LAYERS here and in {ARCHITECTURE.name}"


def test_no_module_imports_a_layer_above_or_beside_its_own() -> None:
    offending, used = [], set()
    for module, path in modules():
        mine = layer_of(module)
        if mine is None:
            continue
        for target, _line in imported(module, path):
            theirs = layer_of(target)
            if theirs is None or may_import(mine, theirs):
                continue
            excepted = _exception(module, target)
            if excepted is not None:
                used.add(excepted)
                continue
            message = f"{module} -> {target} (layer {mine} may not import layer {theirs})"
            if message not in offending:
                offending.append(message)
    assert not offending, "imports against the layering rule of docs/architecture.md:\n" + "\n".join(offending)
    present = {m for m, _ in modules()}  # an exception of a module being moved is not stale yet
    stale = sorted(f"{m} -> {t}" for m, t in EXCEPTIONS if (m, t) not in used and m in present)
    assert not stale, f"exceptions that no import needs any more, remove them: {stale}"


@pytest.mark.parametrize(
    "source, target, allowed",
    [
        ("causalprint.jobs.scan", "causalprint.scan.report", True),
        ("causalprint.jobs.serve", "causalprint.serving.launcher", True),
        ("causalprint.serving.api", "causalprint.jobs.catalog", False),
        ("causalprint.serving.api", "causalprint.attribution.model", True),
        ("causalprint.storage.store", "causalprint.data.parts", False),
        ("causalprint.runtime.job_config", "causalprint.tracking.mlflow_setup", True),
        ("causalprint.runtime.job_config", "causalprint.tracking.versions", False),
        ("causalprint.cli", "causalprint.serving", True),
    ],
)
def test_the_rule(source: str, target: str, allowed: bool) -> None:
    mine, theirs = layer_of(source), layer_of(target)
    assert mine is not None and theirs is not None
    assert may_import(mine, theirs) is allowed


def test_relative_imports_and_plugin_targets_resolve(tmp_path: Path) -> None:
    source = (
        "from . import report\nfrom .errors import ScanError\nfrom ..data.parts import read_parts\n"
        "PLUGINS = {'rgb': 'causalprint.features.spaces.rgb:RGBSpace'}\n"
    )
    path = tmp_path / "job.py"
    path.write_text(source)
    names = [n for n, _ in imported("causalprint.scan.job", path)]
    assert names == [
        "causalprint.scan.report",
        "causalprint.scan.errors",
        "causalprint.data.parts",
        "causalprint.features.spaces.rgb",
    ]


def test_the_architecture_page_maps_every_package_as_the_test_does() -> None:
    rows = dict(re.findall(r"^\| `(causalprint[\w.]*)` \| (\w+) \|", ARCHITECTURE.read_text(), re.MULTILINE))
    assert rows == LAYERS, f"docs/architecture.md and LAYERS differ: {set(rows.items()) ^ set(LAYERS.items())}"
