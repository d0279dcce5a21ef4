"""Extraction over the tiny zoo on the S3 server: one row per image, error rows, idempotent reruns."""

from __future__ import annotations

import pyarrow as pa
import pytest

from causalprint.data.parts import read_parts, vectors
from causalprint.extraction.config import ExtractConfig, ExtractJobConfig, SpaceSpec
from causalprint.extraction.pipeline import run_extract
from causalprint.residual.reference import ReferenceModel
from causalprint.storage import Storage
from causalprint.storage.folders import upload_folder
from causalprint.zoo.manifest import MANIFEST_SCHEMA, read_manifest

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def extraction_inputs(tiny_zoo_s3: Storage, tiny_reference_dir) -> tuple[Storage, pa.Table]:
    storage = tiny_zoo_s3
    upload_folder(storage, tiny_reference_dir, "models/reference/tiny")
    manifest = read_manifest(storage, storage.uri("zoo/tiny/manifest.parquet"))
    good = manifest.slice(0, 40)
    png = storage.read_bytes(good["uri"][0].as_py())
    bad = {"extra/truncated.png": png[: len(png) // 2], "extra/notes.jpg": b"plain text, not a JPEG"}
    rows = []
    for rel, data in bad.items():
        storage.write_bytes(storage.uri(rel), data)
        rows.append(
            {
                "uri": storage.uri(rel),
                "source": "real",
                "arch": "real",
                "family": "real",
                "content_group": "objects",
                "seed": 0,
                "split": "train",
                "index": len(rows),
            }
        )
    inputs = pa.concat_tables([good, pa.Table.from_pylist(rows, schema=MANIFEST_SCHEMA)])
    storage.write_parquet(storage.uri("inputs/manifest.parquet"), inputs)
    return storage, inputs


def _job(storage: Storage, output: str = "features/test", reference: str = "models/reference/tiny"):
    return ExtractJobConfig(
        storage=storage.config,
        extract=ExtractConfig(
            input="inputs/manifest.parquet",
            output=output,
            reference=reference,
            batch_size=16,
            modes={"one_step": {}, "image": {}, "dire": {"steps": 1}},
            spaces=[SpaceSpec(name="rgb"), SpaceSpec(name="dct")],
        ),
    )


def test_one_row_per_image_with_error_rows_and_no_rework(extraction_inputs, tiny_reference_dir) -> None:
    storage, inputs = extraction_inputs
    first = run_extract(_job(storage))
    assert first["written"] == inputs.num_rows and first["skipped"] == 0
    table = read_parts(storage, "features/test")
    uris = table["uri"].to_pylist()
    assert sorted(uris) == sorted(inputs["uri"].to_pylist()) and len(set(uris)) == len(uris)

    rows = {r["uri"]: r for r in table.select(["uri", "ok", "error_kind", "source", "reference_id"]).to_pylist()}
    assert rows[storage.uri("extra/truncated.png")]["error_kind"] == "truncated"
    assert rows[storage.uri("extra/notes.jpg")]["error_kind"] == "not_an_image"
    assert sum(r["ok"] for r in rows.values()) == inputs.num_rows - 2
    expected_id = ReferenceModel.from_pretrained(tiny_reference_dir).identity.id
    assert {r["reference_id"] for r in rows.values()} == {expected_id}

    for column in ("one_step.rgb", "one_step.dct", "image.rgb", "dire.dct"):
        assert vectors(table, column).shape == (inputs.num_rows, 3 * 16 * 16)
    ok = table["ok"].to_numpy(zero_copy_only=False)
    assert not (vectors(table, "one_step.rgb")[ok] == vectors(table, "image.rgb")[ok]).all()

    again = run_extract(_job(storage))
    assert again["written"] == 0 and again["skipped"] == inputs.num_rows
    assert read_parts(storage, "features/test").num_rows == inputs.num_rows


def test_resumes_after_a_partial_run(extraction_inputs) -> None:
    storage, inputs = extraction_inputs
    run_extract(_job(storage, output="features/partial"))
    parts = [f.uri for f in storage.list_files("features/partial", (".parquet",))]
    lost = storage.read_parquet(parts[0]).num_rows
    storage.delete(parts[0])  # as if the job had died before writing this part
    resumed = run_extract(_job(storage, output="features/partial"))
    assert resumed["written"] == lost > 0 and resumed["skipped"] == inputs.num_rows - lost
    table = read_parts(storage, "features/partial")
    assert sorted(table["uri"].to_pylist()) == sorted(inputs["uri"].to_pylist())


def test_refuses_to_mix_reference_models(extraction_inputs, tiny_reference_dir, tmp_path) -> None:
    import torch

    storage, _ = extraction_inputs
    run_extract(_job(storage, output="features/mixed"))
    other = ReferenceModel.from_pretrained(tiny_reference_dir)
    with torch.no_grad():
        next(other.unet.parameters()).add_(0.5)
    other.save_pretrained(tmp_path / "other", name="tiny")
    upload_folder(storage, tmp_path / "other", "models/reference/other")
    with pytest.raises(ValueError, match="another extraction"):
        run_extract(_job(storage, output="features/mixed", reference="models/reference/other"))
