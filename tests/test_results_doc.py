"""Figures are never stale: every generated section of docs/results.md records the presets that wrote it, and
a section whose preset has changed since fails here unless it says itself that it is stale."""

from __future__ import annotations

import shutil
from pathlib import Path

from causalprint.presets import PRESET_ROOT, forget_presets_read, load_preset, preset_hash
from causalprint.results_doc import mark_stale, stale_sections, update_section

RESULTS = Path(__file__).resolve().parents[1] / "docs" / "results.md"


def test_every_section_of_the_results_matches_its_presets_or_says_it_is_stale() -> None:
    problems = stale_sections(RESULTS.read_text())
    assert not problems, "\n".join(problems)


def test_a_section_records_each_preset_read_and_the_code_version(tmp_path) -> None:
    forget_presets_read()
    load_preset("zoo", "tiny")
    load_preset("train", "tiny")
    doc = tmp_path / "results.md"
    update_section(doc, "zoo-tiny", "Generator zoo `tiny`", "| a |\n|---|", command="causalprint zoo build")
    text = doc.read_text()
    zoo, train = (preset_hash(PRESET_ROOT / kind / "tiny.yaml") for kind in ("zoo", "train"))
    assert f"Presets: `zoo/tiny` (sha256 `{zoo}`), `train/tiny` (sha256 `{train}`). Code: `" in text
    assert stale_sections(text) == []


def test_a_changed_preset_fails_until_its_section_is_rewritten_or_marked_stale(tmp_path) -> None:
    root = tmp_path / "presets"  # a copy of the tree's presets, edited below
    shutil.copytree(PRESET_ROOT / "zoo", root / "zoo")
    doc = tmp_path / "results.md"
    preset = root / "zoo" / "tiny.yaml"
    update_section(
        doc,
        "zoo-tiny",
        "Generator zoo `tiny`",
        "figures",
        command="causalprint zoo build --preset tiny",
        presets={"zoo/tiny": preset_hash(preset)},
    )
    update_section(doc, "other", "Another section", "figures", command="causalprint probe", presets={})
    assert stale_sections(doc.read_text(), root) == []

    preset.write_text(preset.read_text().replace("train_steps: 3,", "train_steps: 4,", 1))
    problems = stale_sections(doc.read_text(), root)
    assert len(problems) == 1 and problems[0].startswith("section zoo-tiny: preset zoo/tiny changed")
    assert "rerun `causalprint zoo build --preset tiny`" in problems[0]

    mark_stale(doc, "zoo-tiny", "written before the generators trained four steps.")
    text = doc.read_text()
    assert (
        "Stale: written before the generators trained four steps. Rerun `causalprint zoo build --preset tiny` "
        "to refresh it." in text
    )
    assert stale_sections(text, root) == []
    # Rerunning the command rewrites the section with the preset's new hash, and the mark goes with the old figures.
    update_section(
        doc,
        "zoo-tiny",
        "Generator zoo `tiny`",
        "new figures",
        command="causalprint zoo build",
        presets={"zoo/tiny": preset_hash(preset)},
    )
    assert "Stale:" not in doc.read_text() and stale_sections(doc.read_text(), root) == []

    preset.unlink()
    assert stale_sections(doc.read_text(), root) == [
        "section zoo-tiny: preset zoo/tiny is gone; rerun `causalprint zoo build` or mark it stale "
        "(causalprint.results_doc.mark_stale)"
    ]


def test_a_section_without_a_preset_record_fails_unless_marked_stale(tmp_path) -> None:
    doc = tmp_path / "results.md"
    doc.write_text(
        "# Results\n\n<!-- BEGIN old -->\n## Old\n\nCommand: `causalprint probe --preset bench`\n\n"
        "figures\n<!-- END old -->\n"
    )
    assert stale_sections(doc.read_text()) == [
        "section old: records no preset hash; rerun `causalprint probe --preset bench` or mark it stale "
        "(causalprint.results_doc.mark_stale)"
    ]
    mark_stale(doc, "old", "written before sections recorded their presets.")
    assert stale_sections(doc.read_text()) == []
