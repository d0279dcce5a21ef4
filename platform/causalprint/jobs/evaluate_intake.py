"""``causalprint evaluate-intake``: an attributor that learned from native tiles, tested on a zoo's whole held-out
images read in each intake mode (native tiles, resized), each by ``causalprint scan``'s own code
(:mod:`causalprint.evaluation.intake_eval`)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any, Literal, TypedDict

import pyarrow.compute as pc
from PIL import Image
from pydantic import Field

from causalprint.config import StrictModel
from causalprint.data.parts import read_parts
from causalprint.evaluation.intake_eval import score_report
from causalprint.imaging.tiles import AttributionIntakeConfig
from causalprint.jobs.spec import Section
from causalprint.runtime.job_config import JobConfig
from causalprint.scan.config import ScanConfig, ScanJobConfig, ScanOptions
from causalprint.scan.job import run_scan
from causalprint.storage import Storage
from causalprint.text import markdown_cell
from causalprint.zoo.manifest import read_manifest


class IntakeEvalOptions(StrictModel):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", description="names the reports and the results section")
    manifest: str = Field(description="the zoo of whole images: its manifest in storage")
    images: str = Field(description="the zoo's images folder (one scan per mode reads it, train split ignored)")
    split: str = Field(default="heldout", description="the manifest split that is scored")
    modes: list[Literal["tiles", "resize"]] = Field(default=["tiles", "resize"], min_length=1)
    tiles: int = Field(default=4, ge=1, le=64, description="tiles per image at most (mode: tiles)")


class IntakeEvalConfig(JobConfig):
    evaluate: IntakeEvalOptions
    scan: ScanOptions


CONFIG = IntakeEvalConfig


class IntakeEvalResult(TypedDict):
    modes: dict[str, dict[str, Any]]
    image_size: list[int]
    model: str


def _scan(config: IntakeEvalConfig, mode: str) -> dict[str, Any]:
    cfg = config.evaluate
    options = {
        **config.scan.model_dump(),
        "source": cfg.images,
        "output": f"scans/{cfg.name}/{mode}",
        # Only the scored split: the others' files are skipped by the listing (and counted as ignored).
        "ignore": [*config.scan.ignore, *(f"*/{s}/*" for s in ("train", "heldout") if s != cfg.split)],
    }
    job = ScanJobConfig(
        **config.shared(), scan=ScanConfig(**options), intake=AttributionIntakeConfig(mode=mode, tiles=cfg.tiles)
    )
    return run_scan(job)


def run(config: IntakeEvalConfig) -> IntakeEvalResult:
    storage = Storage(config.storage)
    cfg = config.evaluate
    manifest = read_manifest(storage, cfg.manifest)
    manifest = manifest.filter(pc.equal(manifest["split"], cfg.split))
    modes: dict[str, dict[str, Any]] = {}
    model = ""
    for mode in cfg.modes:
        summary = _scan(config, mode)
        model = summary["model_version"]
        report = read_parts(storage, summary["report"], columns=["uri", "predicted", "architecture", "unknown", "ok"])
        modes[mode] = {
            **score_report(report, manifest),
            "images_per_second": summary["run"]["images_per_second"],
            "by_intake": summary.get("by_intake", {}),
            "report": summary["report"],
        }
    return {"modes": modes, "image_size": _image_size(storage, manifest["uri"][0].as_py()), "model": model}


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
    return "\n".join(lines)


def format_intake(config: IntakeEvalConfig, result: IntakeEvalResult) -> str:
    cfg = config.evaluate
    width, height = result["image_size"]
    modes = list(result["modes"])
    lines = [
        f"Model `{result['model']}`, which learned from {config.scan.reference.rsplit('/', 1)[-1]}-size native tiles; "
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
    lines += ["", "| mode | images/s (scan, end to end) | read as | errors | images missing from the report |"]
    lines.append("|---|---:|---|---:|---:|")
    for mode, scored in result["modes"].items():
        read_as = ", ".join(f"{k} {v}" for k, v in scored["by_intake"].items()) or "n/a"
        lines.append(
            f"| {mode} | {scored['images_per_second']:.1f} | {read_as} | {scored['errors']} | {scored['missing']} |"
        )
    return "\n".join(lines)


def section(config: IntakeEvalConfig, result: IntakeEvalResult, preset: str, docs_dir: Path) -> Section:
    return Section(
        f"intake-{config.evaluate.name}",
        f"Whole images read as native tiles or resized (`{config.evaluate.name}`)",
        format_intake(config, result),
    )
