"""build_inventory and format_inventory."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from image_samples import collection_files

from causalprint.data import decode_rows, read_collection
from causalprint.imaging import IntakeConfig
from causalprint.inventory import InventoryFailure, build_inventory, format_inventory
from causalprint.storage import Storage, StorageConfig

ROWS = [
    {"uri": "/d/b.png", "ok": True, "error_kind": "", "error": ""},
    {"uri": "/d/a.png", "ok": True, "error_kind": "", "error": ""},
    {"uri": "/d/z.png", "ok": False, "error_kind": "truncated", "error": "PNG data ends early"},
    {"uri": "/d/c.png", "ok": True, "error_kind": "", "error": ""},
    {"uri": "/d/e.jpg", "ok": False, "error_kind": "empty", "error": "file is empty (0 bytes)"},
]
MANIFEST = pa.table(
    {
        "uri": ["/d/a.png", "/d/b.png", "/d/z.png", "/d/gone.png", "/d/q.png"],
        "source": ["real", "sd", "sd", "sd", "gan"],
        "label": [0, 1, 1, 1, 2],  # extra columns are ignored
    }
)


def test_counts_sources_missing_and_failures() -> None:
    report = build_inventory(ROWS, "/d", MANIFEST)
    assert (report.prefix, report.total, report.ok, report.failed) == ("/d", 5, 3, 2)
    # z.png is listed under sd but failed: it counts as a failure, not as an ok sd image.
    assert report.by_source == {"gan": 0, "real": 1, "sd": 1, "unlisted": 1}
    assert report.missing == ["/d/gone.png", "/d/q.png"]
    assert report.failures == [
        InventoryFailure(uri="/d/e.jpg", kind="empty", reason="file is empty (0 bytes)"),
        InventoryFailure(uri="/d/z.png", kind="truncated", reason="PNG data ends early"),
    ]


def test_without_manifest() -> None:
    report = build_inventory(ROWS, "/d")
    assert (report.total, report.ok, report.failed, report.by_source, report.missing) == (5, 3, 2, {}, [])


def test_no_unlisted_entry_when_everything_is_listed() -> None:
    assert "unlisted" not in build_inventory(ROWS[:2], "/d", MANIFEST).by_source


def test_table_and_batch_inputs_agree() -> None:
    table = pa.Table.from_pylist(ROWS)
    batch = {k: np.array([r[k] for r in ROWS], dtype=object if k != "ok" else bool) for k in ROWS[0]}
    expected = build_inventory(ROWS, "/d", MANIFEST)
    assert build_inventory(table, "/d", MANIFEST) == expected
    assert build_inventory(batch, "/d", MANIFEST) == expected


@pytest.mark.parametrize(
    "manifest,match",
    [
        (pa.table({"path": ["/d/a.png"], "source": ["x"]}), "uri"),
        (pa.table({"uri": ["/d/a.png", "/d/a.png"], "source": ["x", "y"]}), "two sources"),
        (pa.table({"uri": ["/d/a.png"], "source": ["unlisted"]}), "reserved"),
    ],
)
def test_bad_manifests(manifest: pa.Table, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        build_inventory(ROWS, "/d", manifest)


def test_format_lists_totals_sources_failures_and_missing() -> None:
    text = format_inventory(build_inventory(ROWS, "/d", MANIFEST))
    assert text.startswith("Inventory of /d")
    for pattern in (r"failed +2", r"missing +2", r"real +1", r"gan +0", r"unlisted +1", r"/d/gone\.png"):
        assert re.search(pattern, text), pattern
    assert re.search(r"truncated +/d/z\.png +PNG data ends early", text)
    assert "failures" not in format_inventory(build_inventory(ROWS[:2], "/d"))


def test_inventory_of_a_dataset(ray_session: None, tmp_path: Path) -> None:
    storage = Storage(StorageConfig(root=str(tmp_path)))
    files, good, bad = collection_files()
    for name, data in files.items():
        storage.write_bytes(storage.uri(name), data)
    manifest = pa.table(
        {
            "uri": [storage.uri(n) for n in ("good/a.png", "good/b.jpg", "bad/bomb.png", "good/never.png")],
            "source": ["real", "sd", "sd", "real"],
        }
    )
    dataset = read_collection(storage, "", IntakeConfig(size=8), batch_size=2)
    report = build_inventory(dataset, storage.root, manifest)
    assert (report.total, report.ok, report.failed) == (len(good) + len(bad), len(good), len(bad))
    assert report.by_source == {"real": 1, "sd": 1, "unlisted": len(good) - 2}
    assert report.missing == [storage.uri("good/never.png")]
    assert {f.uri: f.kind for f in report.failures} == {storage.uri(n): k for n, k in bad.items()}
    assert all(f.reason for f in report.failures)


def test_inventory_of_an_empty_dataset(ray_session: None, tmp_path: Path) -> None:
    storage = Storage(StorageConfig(root=str(tmp_path)))
    report = build_inventory(read_collection(storage, "", IntakeConfig()), storage.root)
    assert (report.total, report.ok, report.failed, report.failures) == (0, 0, 0, [])


def test_inventory_of_decode_rows_output(tmp_path: Path) -> None:
    storage = Storage(StorageConfig(root=str(tmp_path)))
    storage.write_bytes(storage.uri("x.png"), b"")
    batch = decode_rows({"uri": np.array([storage.uri("x.png")], dtype=object)}, storage, IntakeConfig())
    report = build_inventory(batch, storage.root)
    assert (report.total, report.failed, report.failures[0].kind) == (1, 1, "empty")


def test_names_are_escaped_and_skips_are_counted() -> None:
    rows = [
        {"uri": "/d/forged\n  ok  1.png", "ok": False, "error_kind": "empty", "error": "file is empty"},
        {"uri": "/d/\x1b[2J\x1b[31mred\u202egnp.png", "ok": False, "error_kind": "not_an_image", "error": "x"},
    ]
    report = build_inventory(rows, "/d").model_copy(update={"skipped": {"matches ignore pattern '*.txt'": 2}})
    text = format_inventory(report)
    assert "\x1b" not in text and "\u202e" not in text and "forged\n" not in text
    assert "forged\\n  ok  1.png" in text and "\\x1b[2J\\x1b[31mred\\u202egnp.png" in text
    assert re.search(r"skipped: matches ignore pattern '\*\.txt'\s+2", text)
