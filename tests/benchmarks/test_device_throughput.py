"""The device benchmark: a kit that travels without the registry or the zoo, and tables measured from it."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from scan_world import CHAMPION, REFERENCE, World, build_world

from causalprint.benchmarks.device_throughput import agreement
from causalprint.cli import main
from causalprint.scan.image_attributor import ImageAttributor
from causalprint.storage import Storage, StorageConfig

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, ray_session: None, tiny_reference_dir: Path) -> World:
    return build_world(tmp_path_factory, tiny_reference_dir)


def test_a_kit_travels_alone_and_the_benchmark_measures_it(world: World, tmp_path: Path) -> None:
    root = Path(world.storage.root)
    kit = [
        "--set",
        f"mlflow.tracking_uri={world.tracking_uri}",
        "--set",
        f"kit.model={CHAMPION}",
        "--set",
        f"kit.reference={REFERENCE}",
        "--set",
        "kit.manifest=manifest.parquet",
        "--set",
        "kit.images=6",
        "--set",
        "kit.output=bench/kit",
    ]
    assert main(["bench", "device-kit", "--preset", "tiny", "--set", f"storage.root={root}", *kit]) == 0
    files = {p.relative_to(root / "bench/kit").as_posix() for p in (root / "bench/kit").rglob("*") if p.is_file()}
    assert {"kit.json", "attributor/requirements.json", "attributor/model/model.safetensors"} <= files
    assert any(f.startswith("reference/") and f.endswith(".safetensors") for f in files)
    assert not [f for f in files if f.endswith((".pkl", ".pt", ".pth"))]  # JSON + safetensors only
    images = sorted(f for f in files if f.startswith("images/"))
    assert len(images) == 6
    kit_info = Storage(StorageConfig(root=str(root))).read_json(str(root / "bench/kit/kit.json"))
    assert kit_info["images"] == 6
    assert kit_info["model"] == CHAMPION.replace("@champion", "/1")  # pinned: the alias may move later

    # The kit alone, in a root with no registry, no manifest and no features: what a GPU machine receives.
    alone = tmp_path / "alone"
    shutil.copytree(root / "bench/kit", alone / "bench/kit")
    results = tmp_path / "results.md"
    args = [
        "bench",
        "device",
        "--preset",
        "tiny",
        "--results",
        str(results),
        "--set",
        f"storage.root={alone}",
        "--set",
        "bench.kit=bench/kit",
        "--set",
        "bench.images=6",
        "--set",
        "bench.cpu_images=6",
    ]
    assert main(args) == 0
    text = results.read_text()
    assert "<!-- BEGIN device-tiny -->" in text and "Command: `" in text
    assert f"Attributor `{kit_info['model']}`" in text
    # The agreement table: the CPU agrees with itself, exactly.
    assert "| float32 | 6 | 100.00 % | 100.00 % | 0.00e+00 |" in text
    assert "| CPU " in text and "one_step" in text and "s/epoch" in text
    if not torch.cuda.is_available():
        assert "Not measured (not visible to this process): cuda." in text
        assert "| auto |" not in text  # auto is float32 on the CPU: measured once

    # Decisions are compared with the CPU's full-precision run whatever order the config names: here that run is
    # the CPU's "auto", which is float32 there, and the device named first has nothing to compare against yet.
    again = tmp_path / "again.md"
    rerun = [str(again) if a == str(results) else a for a in args]
    assert (
        main(
            [
                *rerun,
                "--set",
                "bench.devices=[cuda, cpu]",
                "--set",
                "bench.precisions=[auto]",
                "--set",
                "bench.modes={one_step: {t: 200}}",
            ]
        )
        == 0
    )
    assert "| auto | 6 | 100.00 % | 100.00 % | 0.00e+00 |" in again.read_text()


def test_a_pipeline_around_a_loaded_attributor_decides_as_the_registry_one(world: World) -> None:
    registered = ImageAttributor(world.storage, CHAMPION, REFERENCE, tracking_uri=world.tracking_uri)
    loaded = ImageAttributor.from_attributor(world.storage, registered.attributor, "local", REFERENCE)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (5, registered.image_size, registered.image_size, 3), dtype=np.uint8)
    batch = {"ok": np.ones(5, dtype=bool), "image": images}
    a, b = registered(batch), loaded(batch)
    assert list(b["model_version"]) == ["local"] * 5
    assert agreement(a, b) == {"images": 5, "decisions": 1.0, "architectures": 1.0, "max_probability_gap": 0.0}


def test_agreement_counts_differences() -> None:
    base = {
        "predicted": np.array(["a", "b", "c", "d"], dtype=object),
        "architecture": np.array(["x", "y", "x", "y"], dtype=object),
        "probabilities": np.array([[0.9, 0.1], [0.2, 0.8], [0.5, 0.5], [0.6, 0.4]], dtype=np.float32),
    }
    other = {
        **base,
        "predicted": np.array(["a", "b", "c", "e"], dtype=object),
        "probabilities": base["probabilities"] + np.float32(0.25) * np.eye(4, 2, dtype=np.float32),
    }
    out = agreement(base, other)
    assert out["images"] == 4 and out["decisions"] == 0.75 and out["architectures"] == 1.0
    assert out["max_probability_gap"] == pytest.approx(0.25)
