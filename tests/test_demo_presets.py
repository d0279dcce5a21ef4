"""The main job's demo presets hold what issue 23 asks of them; how well they do is docs/results.md, "The main job"
(a run takes minutes, so the tests run the same stages on the tiny presets: tests/test_pipeline.py)."""

from __future__ import annotations

from causalprint.cli import build_parser
from causalprint.config import build_config
from causalprint.jobs.main import MainJobConfig, _check_wiring, preset
from causalprint.storage import Storage
from causalprint.zoo.registry import GENERATORS


def test_run_defaults_to_the_demo_presets_and_they_connect() -> None:
    assert build_parser().parse_args(["run"]).preset == "demo"
    config = build_config(MainJobConfig, preset("demo"))
    _check_wiring(config, Storage(config.storage))  # each stage reads what the one before it wrote


def test_the_demo_zoo_holds_two_gans_and_two_diffusion_families_at_32_px() -> None:
    zoo = build_config(MainJobConfig, preset("demo")).zoo
    families: dict[str, set[str]] = {}
    for spec in zoo.generators:
        families.setdefault(GENERATORS.get(spec.arch).family, set()).add(spec.arch)
    assert zoo.image_size == 32 and len(zoo.sources) >= 6 and zoo.sources[0] == "real"
    assert len(families["gan"]) >= 2 and len(families["diffusion"]) >= 2, families
    assert zoo.photos.source == "skimage"  # a fresh clone needs no photographs of its own


def test_the_gate_refuses_a_demo_model_below_the_target() -> None:
    """A regression of the demo fails loudly: below 95 % the model is not champion and `causalprint run` exits
    non-zero (1 when an earlier champion answered the scan; with none, the scan's own refusal)."""
    train = build_config(MainJobConfig, preset("demo")).train
    assert train.gate.minimum["test_accuracy"] >= 0.95 and train.promote
