"""The scan's pieces without Ray: report rows and their round trip, the pinned report, model URIs, and what an
attributor's requirements must say before a scan starts."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow.compute as pc
import pyarrow.dataset as pads
import pytest

from causalprint.extraction.config import SpaceSpec
from causalprint.scan.attributor import check_reference, extraction_spec, resolve_model
from causalprint.scan.errors import ScanError
from causalprint.scan.report import (
    CLASS_NAMES_KEY,
    default_output,
    format_summary,
    pin_scan,
    report_prefix,
    report_table,
    summarize,
    write_report_part,
)
from causalprint.storage import Storage, StorageConfig
from causalprint.storage.lease import Lease, LeaseLostError

CLASSES = ["gan-a", "real", "sd-a"]


def _batch(uris: list[str], ok: list[bool]) -> dict[str, np.ndarray]:
    n = len(uris)
    good = np.asarray(ok)
    probs = np.where(good[:, None], np.array([[0.7, 0.2, 0.1]], np.float32), np.nan).astype(np.float32)
    return {
        "uri": np.array(uris, dtype=object),
        "ok": good,
        "error_kind": np.array(["" if g else "truncated" for g in ok], dtype=object),
        "error": np.array(["" if g else "image data ends early" for g in ok], dtype=object),
        "predicted": np.array(["gan-a" if g else "" for g in ok], dtype=object),
        "source_family": np.array(["gan" if g else "" for g in ok], dtype=object),
        "architecture": np.array(["dcgan" if g else "" for g in ok], dtype=object),
        "unknown": np.zeros(n, dtype=bool),
        "confidence": np.where(good, 0.7, np.nan).astype(np.float32),
        "probabilities": probs,
        "model_version": np.full(n, "models:/m/1", dtype=object),
        "reference_id": np.full(n, "tiny@0123", dtype=object),
    }


def test_a_writer_whose_run_no_longer_holds_the_lease_writes_nothing(tmp_path) -> None:
    # A killed driver's actor (run r1) still running after a rerun (run r2) took the report's lease.
    storage = Storage(StorageConfig(root=str(tmp_path)))
    prefix = report_prefix(storage.uri("scans"), "m-v1")
    uris = [storage.uri("in", f"{i}.png") for i in range(2)]
    with Lease(storage, f"{prefix}/_lease.json", what="scan run r2 of in"):
        with pytest.raises(LeaseLostError, match="scan run r1 of in no longer holds .*held by scan run r2"):
            write_report_part(
                _batch(uris, [True, True]), storage, prefix, "r1", CLASSES, lease_holder="scan run r1 of in"
            )
        assert not storage.exists(f"{prefix}/run=r1")
        counts = write_report_part(
            _batch(uris, [True, True]), storage, prefix, "r2", CLASSES, lease_holder="scan run r2 of in"
        )
        assert counts["written"].tolist() == [2]
    # No lease at all (the holder finished or was never there): refused too.
    with pytest.raises(LeaseLostError, match="no lease"):
        write_report_part(_batch(uris, [True, True]), storage, prefix, "r3", CLASSES, lease_holder="scan run r3 of in")


def test_report_parts_round_trip_with_null_decisions_on_error_rows(tmp_path) -> None:
    storage = Storage(StorageConfig(root=str(tmp_path)))
    prefix = report_prefix(storage.uri("scans"), "m-v1")
    uris = [storage.uri("in", f"{i}.png") for i in range(5)]
    counts = write_report_part(_batch(uris[:3], [True, False, True]), storage, prefix, "r1", CLASSES)
    assert counts["written"].tolist() == [3] and counts["ok"].tolist() == [2]
    write_report_part(_batch(uris[3:], [True, True]), storage, prefix, "r2", CLASSES)

    # Hive-style: the model and run folders become columns; _scan.json and _summary.json are not data.
    storage.write_json(f"{prefix}/_summary.json", {})
    table = pads.dataset(storage.uri("scans"), format="parquet", partitioning="hive").to_table()
    assert sorted(table["uri"].to_pylist()) == uris and set(table["run"].to_pylist()) == {"r1", "r2"}
    assert json.loads(table.schema.metadata[CLASS_NAMES_KEY]) == CLASSES
    bad = table.filter(pc.equal(table["uri"], uris[1])).to_pylist()[0]
    assert (bad["ok"], bad["error_kind"], bad["predicted"], bad["probabilities"], bad["confidence"]) == (
        False,
        "truncated",
        None,
        None,
        None,
    )
    good = table.filter(pc.equal(table["uri"], uris[0])).to_pylist()[0]
    assert good["probabilities"] == pytest.approx([0.7, 0.2, 0.1]) and good["source_family"] == "gan"
    assert good["architecture"] == "dcgan" and bad["architecture"] is None

    summary = summarize(storage, prefix)
    assert (summary["images"], summary["attributed"], summary["errors"]) == (5, 4, 1)
    assert summary["by_predicted"] == {"gan-a": 4} and summary["errors_by_kind"] == {"truncated": 1}
    assert summary["by_architecture"] == {"dcgan": 4}
    assert summary["error_examples"] == [{"uri": uris[1], "error_kind": "truncated", "error": "image data ends early"}]
    run = {
        "id": "r2",
        "listed": 5,
        "skipped": 3,
        "written": 2,
        "seconds": 1.0,
        "images_per_second": 2.0,
        "first_part_seconds": 0.5,
        "steady_images_per_second": 2.0,
    }
    text = format_summary(
        {
            **summary,
            "source": "in",
            "report": prefix,
            "model_version": "models:/m/1",
            "reference_id": "tiny@0123",
            "run": run,
        }
    )
    assert "| gan-a | 4 |" in text and "| dcgan | 4 |" in text and uris[1] in text and "3 already in the report" in text


def test_no_value_is_null_in_the_report() -> None:
    """The pipeline marks "no value" with "" (an unknown has no family); None and NaN, which is what Ray Data makes
    of an object column of Nones, mean the same."""
    for missing in ("", None, np.nan):
        batch = _batch(["a.png", "b.png"], [True, False])
        batch["source_family"] = np.full(2, missing, dtype=object)
        rows = report_table(batch, CLASSES).to_pylist()
        assert [(r["predicted"], r["source_family"], r["unknown"]) for r in rows] == [
            ("gan-a", None, False),
            (None, None, None),
        ]


def test_a_report_holds_one_scan(tmp_path) -> None:
    storage = Storage(StorageConfig(root=str(tmp_path)))
    meta = {"source": storage.uri("in"), "model_version": "models:/m/1", "class_names": CLASSES}
    pin_scan(storage, storage.uri("scans/m"), meta)
    pin_scan(storage, storage.uri("scans/m"), meta)  # the same scan, resumed
    with pytest.raises(
        ScanError,
        match=r"holds another scan \(source: .*/in in the report, .*/elsewhere now\): "
        r"--set scan.output=x",
    ):
        pin_scan(storage, storage.uri("scans/m"), {**meta, "source": storage.uri("elsewhere")}, "--set scan.output=x")


def test_each_source_gets_its_own_default_report(tmp_path) -> None:
    storage = Storage(StorageConfig(root=str(tmp_path)))
    one, other = storage.uri("zoo/tiny/images"), storage.uri("photos")
    first = default_output("scans/tiny", one, "zoo/tiny/images")
    assert first.startswith("scans/tiny/zoo-tiny-images-") and len(first.rsplit("-", 1)[1]) == 8
    assert first == default_output("scans/tiny", one, "zoo/tiny/images")  # a rerun finds its report
    assert default_output("scans/tiny", other, "photos") != first
    # Names that differ only in characters the slug drops still get different folders.
    assert default_output("s", storage.uri("a b"), "a b") != default_output("s", storage.uri("a-b"), "a-b")
    assert default_output("s", storage.root, "").startswith("s/root-")


def test_the_summary_escapes_names_and_says_how_images_were_sized(tmp_path) -> None:
    storage = Storage(StorageConfig(root=str(tmp_path)))
    prefix = report_prefix(storage.uri("scans"), "m-v1")
    uris = [storage.uri("in", "forged\n| row | 9 |.png"), storage.uri("in", "\x1b[2Jclear\u202egnp.png")]
    write_report_part(_batch(uris, [False, False]), storage, prefix, "r1", CLASSES)
    run = {
        "id": "r1",
        "listed": 2,
        "skipped": 0,
        "written": 2,
        "seconds": 1.0,
        "images_per_second": 2.0,
        "first_part_seconds": 0.5,
        "steady_images_per_second": 2.0,
        "not_listed": {"matches ignore pattern '*.txt'": 3},
    }
    text = format_summary(
        {
            **summarize(storage, prefix),
            "source": "in\x1b[31m",
            "report": prefix,
            "model_version": "models:/m/1",
            "reference_id": "tiny@0123",
            "intake_size": 32,
            "run": run,
        }
    )
    assert "\x1b" not in text and "\u202e" not in text and "\\x1b[2Jclear\\u202egnp.png" in text
    assert not any(line.startswith("| row") for line in text.splitlines())  # no forged table row
    assert "forged\\n| row | 9 |.png" in text
    assert "resized to 32x32 px" in text and "3 matches ignore pattern '*.txt'" in text


def test_model_uris_are_pinned_or_refused() -> None:
    pinned = resolve_model("runs:/0123456789abcdef0123/attributor")
    assert pinned.uri == pinned.artifacts == "runs:/0123456789abcdef0123/attributor"
    assert pinned.slug == "run-0123456789ab"
    for bad in ("/some/folder", "models:/name", "models:/name/latest", "s3://bucket/attributor"):
        with pytest.raises(ScanError, match="not an MLflow model URI"):
            resolve_model(bad)


@dataclass
class _Attributor:
    requirements: dict[str, Any]
    calibration: Any = field(default=None)


def _requirements(**extraction: Any) -> dict[str, Any]:
    spec = {
        "reference_id": "tiny@0123",
        "image_size": 16,
        "modes": {"one_step": {"t": 200}},
        "spaces": [{"name": "dct", "weights": None, "options": {}}],
        **extraction,
    }
    return {"reference_id": "tiny@0123", "columns": ["one_step.dct"], "input_dim": 768, "extraction": spec}


def test_requirements_must_say_how_to_rebuild_the_columns() -> None:
    spec = extraction_spec(_Attributor(_requirements()), "models:/m/1")
    assert spec.modes == {"one_step": {"t": 200}} and spec.spaces == [SpaceSpec(name="dct")]
    assert spec.columns == ["one_step.dct"] and spec.image_size == 16
    check_reference(spec, "tiny@0123", "models/reference/tiny")
    with pytest.raises(ScanError, match="models/reference/other is tiny@9999.*residuals of tiny@0123"):
        check_reference(spec, "tiny@9999", "models/reference/other")

    legacy = _requirements()
    del legacy["extraction"]
    with pytest.raises(ScanError, match=r"does not record how its features were extracted.*register it again"):
        extraction_spec(_Attributor(legacy), "models:/m/1")
    with pytest.raises(ScanError, match=r"columns \['one_step.dct'\] are not made"):
        extraction_spec(_Attributor(_requirements(modes={"latent": {}})), "models:/m/1")


def test_report_prints_and_exports_one_image_answer(tmp_path, capsys) -> None:
    import csv
    import io

    from causalprint.cli import main
    from causalprint.scan.rows import format_rows, report_rows

    storage = Storage(StorageConfig(root=str(tmp_path)))
    prefix = report_prefix(storage.uri("scans"), "m-v1")
    uris = [storage.uri("in", name) for name in ("b.png", "a.png", "c\x1b[2J.png")]
    write_report_part(_batch(uris, [True, False, True]), storage, prefix, "r1", CLASSES)
    rows = report_rows(storage, prefix, 2)
    assert [r["uri"] for r in rows] == sorted(uris)[:2]
    table = format_rows(report_rows(storage, prefix)).splitlines()
    assert table[0].split() == ["file", "decision", "architecture", "confidence", "unknown", "intake", "error"]
    assert table[1].split() == [uris[1], "-", "truncated:", "image", "data", "ends", "early"]
    assert table[2].split() == [uris[0], "gan-a", "dcgan", "0.700", "no"]
    assert "\x1b" not in "\n".join(table)

    root = ["--set", f"storage.root={tmp_path}"]
    assert main(["report", "scans/model=m-v1", *root, "--all", "--format", "csv"]) == 0
    exported = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["uri"] for r in exported] == sorted(uris) and exported[0]["ok"] == "False"
    assert main(["report", "scans/model=m-v1", *root, "--show", "1", "--format", "jsonl"]) == 0
    [line] = capsys.readouterr().out.splitlines()
    assert json.loads(line)["error_kind"] == "truncated"
    # The output folder of a scan by two models: the message names the reports.
    write_report_part(_batch(uris[:1], [True]), storage, report_prefix(storage.uri("scans"), "m-v2"), "r2", CLASSES)
    assert main(["report", "scans", *root]) == 2
    assert "(model=m-v1, model=m-v2): add one to the path" in capsys.readouterr().err
