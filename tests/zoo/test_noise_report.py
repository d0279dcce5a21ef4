"""The StyleGAN noise table: strengths read back from the weights the zoo build stored, per layer."""

from __future__ import annotations

import tempfile

import pytest

from causalprint.cli import main
from causalprint.jobs import job_config
from causalprint.storage import Storage, StorageConfig, StorageError
from causalprint.storage.folders import upload_folder
from causalprint.zoo.base import GeneratorSpec
from causalprint.zoo.build import generator_prefix
from causalprint.zoo.config import ZooConfig
from causalprint.zoo.noise_report import format_noise_table, noise_strengths
from causalprint.zoo.registry import create_generator

ONE_LAYER = [0.0, 0.0, 0.0, 0.0, 0.07]  # a 16x16 StyleGAN: 4x4, 8x8 x2, 16x16 x2


def _zoo_with(specs: list[GeneratorSpec]) -> ZooConfig:
    zoo = job_config("zoo build", "tiny", environ={}).zoo
    return ZooConfig(**{**zoo.model_dump(), "generators": [s.model_dump() for s in specs]})


def _store(storage: Storage, zoo: ZooConfig, spec: GeneratorSpec) -> None:
    """Save an untrained generator where the zoo build keeps trained ones, train.json last."""
    with tempfile.TemporaryDirectory() as tmp:
        create_generator(spec, zoo.image_size).save_pretrained(tmp)
        prefix = generator_prefix(storage, zoo, spec)
        upload_folder(storage, tmp, prefix)
        storage.write_json(f"{prefix}/train.json", {"source": spec.name})


@pytest.fixture()
def stored(tmp_path) -> tuple[Storage, ZooConfig]:
    base = job_config("zoo build", "tiny", environ={}).zoo.generators
    style = next(g for g in base if g.arch == "stylegan").model_dump()
    specs = [
        GeneratorSpec(**{**style, "name": "sg-layer", "options": {"noise_init": ONE_LAYER, "noise_learned": False}}),
        GeneratorSpec(**{**style, "name": "sg-plain"}),
        GeneratorSpec(**{**style, "name": "sg-drawn", "options": {"noise_random_max": 0.16}}),
        next(g for g in base if g.arch == "dcgan"),
    ]
    zoo = _zoo_with(specs)
    storage = Storage(StorageConfig(root=str(tmp_path)))
    for spec in specs:
        _store(storage, zoo, spec)
    return storage, zoo


def test_strengths_are_read_from_the_stored_weights_per_layer(stored) -> None:
    storage, zoo = stored
    rows = {r["source"]: r for r in noise_strengths(storage, zoo)}
    assert set(rows) == {"sg-layer", "sg-plain", "sg-drawn"}  # StyleGANs only
    assert rows["sg-layer"]["strengths"] == pytest.approx(ONE_LAYER)
    assert rows["sg-layer"]["options"] == {"noise_init": ONE_LAYER, "noise_learned": False}
    assert rows["sg-plain"]["strengths"] == [0.0] * len(ONE_LAYER) and rows["sg-plain"]["options"] == {}
    # Its stored strengths are fixed 1s that the per-image draws scale: no strength of its own to report.
    assert rows["sg-drawn"]["strengths"] is None and rows["sg-drawn"]["options"] == {"noise_random_max": 0.16}


def test_the_table_names_each_layers_resolution_and_marks_large_strengths(stored) -> None:
    storage, zoo = stored
    table = format_noise_table(noise_strengths(storage, zoo), zoo.image_size)
    lines = table.splitlines()
    assert "L0 4x4 | L1 8x8 | L2 8x8 | L3 16x16 | L4 16x16 |" in lines[0]
    layer = next(line for line in lines if line.startswith("| sg-layer |"))
    assert layer.endswith("| +0.000 | **+0.070** |")
    drawn = next(line for line in lines if line.startswith("| sg-drawn |"))
    assert (
        drawn
        == "| sg-drawn | "
        + drawn.split(" | ")[1]
        + " | noise_random_max: 0.16 | "
        + " | ".join(["drawn"] * len(ONE_LAYER))
        + " |"
    )
    assert "learned from 0" in next(line for line in lines if line.startswith("| sg-plain |"))


def test_a_stylegan_not_built_yet_is_named(tmp_path) -> None:
    zoo = job_config("zoo build", "tiny", environ={}).zoo
    with pytest.raises(StorageError, match=r"^stylegan: no trained weights .*`causalprint zoo build`"):
        noise_strengths(Storage(StorageConfig(root=str(tmp_path))), zoo)


def test_the_command_writes_its_section(stored, tmp_path, capsys) -> None:
    storage, zoo = stored
    results = tmp_path / "results.md"
    argv = [
        "zoo",
        "noise",
        "--preset",
        "tiny",
        "--set",
        f"storage.root={storage.config.root}",
        "--results",
        str(results),
    ]
    # The tiny preset's own StyleGANs are not stored here: the command refuses, naming the first.
    assert main(argv) == 2
    assert "stylegan: no trained weights" in capsys.readouterr().err
    tiny = job_config("zoo build", "tiny", environ={}).zoo
    for spec in tiny.generators:
        if spec.arch == "stylegan":
            _store(storage, tiny, spec)
    assert main(argv) == 0
    text = results.read_text()
    assert "StyleGAN noise strengths in zoo `tiny`" in text and "| stylegan-shift | scenes |" in text
