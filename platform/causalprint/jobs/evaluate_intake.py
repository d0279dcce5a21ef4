"""``causalprint evaluate-intake``: an attributor that learned from native tiles, tested on a zoo's whole held-out
images read in each intake mode (native tiles, resized), each by ``causalprint scan``'s own code
(:mod:`causalprint.evaluation.intake_eval`)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any, Literal, TypedDict

import pyarrow as pa
import pyarrow.compute as pc
from PIL import Image
from pydantic import Field

from causalprint.config import StrictModel
from causalprint.data.parts import read_parts
from causalprint.data.photos import PhotoSetConfig
from causalprint.evaluation.intake_eval import score_report
from causalprint.evaluation.intake_sizes import SIZES, build_mixed_folder
from causalprint.imaging.tiles import AttributionIntakeConfig
from causalprint.jobs.spec import Section
from causalprint.runtime.job_config import JobConfig
from causalprint.scan.config import ScanConfig, ScanJobConfig, ScanOptions
from causalprint.scan.job import run_scan
from causalprint.storage import Storage
from causalprint.text import markdown_cell
from causalprint.zoo.manifest import read_manifest


class MixedSizesOptions(StrictModel):
    """A folder that mixes sizes (:mod:`causalprint.evaluation.intake_sizes`), scanned per size and whole."""

    small: int = Field(default=32, ge=8, description="side of the small images: the model's size")
    large: int = Field(default=1024, ge=64, description="side of the large real crops")
    per_size: int = Field(default=40, ge=1, description="images of each size")
    photos: PhotoSetConfig = Field(description="real photographs the large crops are cut from")


class IntakeEvalOptions(StrictModel):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", description="names the reports and the results section")
    manifest: str = Field(description="the zoo of whole images: its manifest in storage")
    images: str = Field(description="the zoo's images folder (one scan per mode reads it, train split ignored)")
    split: str = Field(default="heldout", description="the manifest split that is scored")
    modes: list[Literal["tiles", "resize"]] = Field(default=["tiles", "resize"], min_length=1)
    tiles: int = Field(default=4, ge=1, le=64, description="tiles per image at most (mode: tiles)")
    mixed: MixedSizesOptions | None = Field(default=None, description="also scan a folder that mixes sizes")


class IntakeEvalConfig(JobConfig):
    evaluate: IntakeEvalOptions
    scan: ScanOptions


CONFIG = IntakeEvalConfig


class IntakeEvalResult(TypedDict):
    modes: dict[str, dict[str, Any]]
    image_size: list[int]
    model_size: int
    model: str
    mixed: dict[str, Any] | None


def _scan(config: IntakeEvalConfig, mode: str, source: str, output: str, ignore: list[str]) -> dict[str, Any]:
    """``causalprint scan`` of ``source`` into ``scans/<name>/<output>``, read in intake ``mode``."""
    cfg = config.evaluate
    options = {
        **config.scan.model_dump(),
        "source": source,
        "output": f"scans/{cfg.name}/{output}",
        "ignore": [*config.scan.ignore, *ignore],
    }
    job = ScanJobConfig(
        **config.shared(), scan=ScanConfig(**options), intake=AttributionIntakeConfig(mode=mode, tiles=cfg.tiles)
    )
    return run_scan(job)


REPORT_COLUMNS = ["uri", "predicted", "architecture", "unknown", "ok"]


def _scored(
    storage: Storage, summary: dict[str, Any], truth: pa.Table, report: pa.Table | None = None
) -> dict[str, Any]:
    """The scan's decisions scored against ``truth``, with its throughput (``report``: the rows, if already read)."""
    report = report if report is not None else read_parts(storage, summary["report"], columns=REPORT_COLUMNS)
    return {
        **score_report(report, truth),
        "images_per_second": summary["run"]["images_per_second"],
        "steady_images_per_second": summary["run"]["steady_images_per_second"],
        "by_intake": summary.get("by_intake", {}),
        "report": summary["report"],
    }


def _mixed(config: IntakeEvalConfig, storage: Storage, heldout: pa.Table) -> dict[str, Any]:
    """The mixed-size folder: one scan per size (its throughput), then one of the whole folder (the mix)."""
    cfg = config.evaluate
    mixed = cfg.mixed
    assert mixed is not None
    folder = f"zoo/{cfg.name}-mixed"
    truth = build_mixed_folder(
        storage, heldout, folder, mixed.small, mixed.per_size, mixed.photos, mixed.large, config.storage
    )
    sizes = {
        kind: _scored(storage, _scan(config, "tiles", f"{folder}/{kind}", f"size-{kind}", []), truth) for kind in SIZES
    }
    whole = _scan(config, "tiles", folder, "mixed", [])
    report = read_parts(storage, whole["report"], columns=REPORT_COLUMNS)  # read once, scored whole and per size
    scored = _scored(storage, whole, truth, report)
    per_size_in_mix = {kind: score_report(report, truth.filter(pc.equal(truth["size"], kind))) for kind in SIZES}
    return {"sizes": sizes, "mix": scored, "mix_by_size": per_size_in_mix, "large": mixed.large, "small": mixed.small}


def run(config: IntakeEvalConfig) -> IntakeEvalResult:
    storage = Storage(config.storage)
    cfg = config.evaluate
    # Every run scans from scratch: a report resumed from an earlier run would time only what was left.
    storage.delete_prefix(f"scans/{cfg.name}")
    manifest = read_manifest(storage, cfg.manifest)
    manifest = manifest.filter(pc.equal(manifest["split"], cfg.split))
    # Only the scored split: the others' files are skipped by the listing (and counted as ignored).
    ignore = [f"*/{s}/*" for s in ("train", "heldout") if s != cfg.split]
    modes: dict[str, dict[str, Any]] = {}
    model, model_size = "", 0
    for mode in cfg.modes:
        summary = _scan(config, mode, cfg.images, mode, ignore)
        model, model_size = summary["model_version"], int(summary["intake_size"])
        modes[mode] = _scored(storage, summary, manifest)
    return {
        "modes": modes,
        "image_size": _image_size(storage, manifest["uri"][0].as_py()),
        "model_size": model_size,
        "model": model,
        "mixed": _mixed(config, storage, manifest) if cfg.mixed else None,
    }


def _image_size(storage: Storage, uri: str) -> list[int]:
    """Width and height of one of the zoo's images (a zoo's images share one size)."""
    with Image.open(io.BytesIO(storage.read_bytes(uri))) as image:
        return list(image.size)


def _all(scored: dict[str, Any]) -> dict[str, Any]:
    return next(r for r in scored["decisions"] if r["source"] == "all")


def describe(result: IntakeEvalResult) -> str:
    lines = []
    for mode, scored in result["modes"].items():
        row = _all(scored)
        lines.append(
            f"{mode}: {row['support']} images, {100 * row['correct']:.1f} % named right, {100 * row['unknown']:.1f} % "
            f"unknown, architecture {100 * scored['architecture']['all']:.1f} %, {scored['errors']} errors, "
            f"{scored['missing']} missing"
        )
    mixed = result["mixed"]
    if mixed:
        row = _all(mixed["mix"])
        lines.append(
            f"mixed sizes: {row['support']} images, {100 * row['correct']:.1f} % named right, "
            f"{mixed['mix']['images_per_second']:.1f} images/s, read as {mixed['mix']['by_intake']}"
        )
    return "\n".join(lines)


def format_mixed(config: IntakeEvalConfig, result: IntakeEvalResult) -> list[str]:
    """The mixed-size folder's table: per size alone (throughput) and inside the mix (decisions)."""
    mixed = result["mixed"]
    if not mixed:
        return []
    width = result["image_size"][0]
    names = {
        "small": f"{mixed['small']} px (the model's size), tiles of the held-out images",
        "zoo": f"{width} px, the held-out images",
        "large": f"{mixed['large']} px, crops of real photographs (JPEG q95; answer: real)",
    }
    lines = [
        "",
        f"**A folder that mixes sizes** (`zoo/{config.evaluate.name}-mixed`), scanned one size at a time (throughput) "
        "and whole (the mix), in the default intake (tiles):",
        "",
        "| images | count | images/s alone (after the first part) | named right | unknown | architecture right | "
        "named right in the mix |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for kind in SIZES:
        alone = mixed["sizes"][kind]
        row = _all(alone)
        in_mix = next(r for r in mixed["mix_by_size"][kind]["decisions"] if r["source"] == "all")
        lines.append(
            f"| {names[kind]} | {row['support']} | {alone['images_per_second']:.1f} "
            f"({alone['steady_images_per_second']:.1f}) | {100 * row['correct']:.1f} % | "
            f"{100 * row['unknown']:.1f} % | {100 * alone['architecture']['all']:.1f} % | "
            f"{100 * in_mix['correct']:.1f} % |"
        )
    mix = mixed["mix"]
    row = _all(mix)
    read_as = ", ".join(f"{k} {v}" for k, v in mix["by_intake"].items())
    lines += [
        "",
        f"The whole folder in one scan: {row['support']} images, {mix['errors']} errors, {mix['missing']} missing, "
        f"{mix['images_per_second']:.1f} images/s ({mix['steady_images_per_second']:.1f} after the first part), read "
        f"as {read_as}; {100 * row['correct']:.1f} % named right. The first part of a scan waits for its actors "
        "to load the models, so the figure after it is the rate of a long scan.",
    ]
    return lines


def format_intake(config: IntakeEvalConfig, result: IntakeEvalResult) -> str:
    cfg = config.evaluate
    width, height = result["image_size"]
    modes = list(result["modes"])
    lines = [
        f"Model `{result['model']}`, which reads {result['model_size']} px images (it learned from native tiles of "
        "that size); "
        f"scored on the {cfg.split} split of `{cfg.manifest}` ({width}x{height} px images), read whole by "
        f"`causalprint scan` in each intake mode (tiles: up to {cfg.tiles} native tiles, decided together; resize: "
        "the whole image resized with Lanczos). Share of each source's images the scan names right, turns away as "
        "unknown, or gives another source; and the share whose architecture is right.",
        "",
        "| source | " + " | ".join(f"{m}: named right | {m}: unknown | {m}: architecture right" for m in modes) + " |",
        "|---|" + "---:|---:|---:|" * len(modes),
    ]
    sources = [r["source"] for r in result["modes"][modes[0]]["decisions"]]
    for source in sources:
        cells = []
        for mode in modes:
            scored = result["modes"][mode]
            row = next((r for r in scored["decisions"] if r["source"] == source), None)
            arch = scored["architecture"].get(source, float("nan"))
            cells += (
                [f"{100 * row['correct']:.1f} %", f"{100 * row['unknown']:.1f} %", f"{100 * arch:.1f} %"]
                if row
                else ["n/a"] * 3
            )
        label = f"**{source}**" if source == "all" else markdown_cell(source)
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "| mode | images/s, end to end (after the first part) | read as | errors | images missing from the report |",
        "|---|---:|---|---:|---:|",
    ]
    for mode, scored in result["modes"].items():
        read_as = ", ".join(f"{k} {v}" for k, v in scored["by_intake"].items()) or "n/a"
        lines.append(
            f"| {mode} | {scored['images_per_second']:.1f} ({scored['steady_images_per_second']:.1f}) | {read_as} | "
            f"{scored['errors']} | {scored['missing']} |"
        )
    return "\n".join([*lines, *format_mixed(config, result)])


def section(config: IntakeEvalConfig, result: IntakeEvalResult, preset: str, docs_dir: Path) -> Section:
    return Section(
        f"intake-{config.evaluate.name}",
        f"Whole images read as native tiles or resized (`{config.evaluate.name}`)",
        format_intake(config, result),
    )
