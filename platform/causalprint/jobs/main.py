"""``causalprint run``: the platform's main job on embedded defaults. Build the zoo, pretrain the reference model,
extract features, train and register an attributor (the gate promotes the champion), then scan the zoo's images
with it. Each stage is another job's ``run``; this module only wires their configs together."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, TypedDict

from pydantic import model_validator

from causalprint.config import ConfigError
from causalprint.extraction.config import ExtractConfig
from causalprint.extraction.pipeline import ExtractSummary
from causalprint.jobs import extract as extract_job
from causalprint.jobs import reference_train
from causalprint.jobs import scan as scan_job
from causalprint.jobs import train as train_job
from causalprint.jobs.spec import Section
from causalprint.presets import load_preset
from causalprint.presets import preset_names as names_of
from causalprint.residual.pretrain import ReferenceTrainConfig, reference_prefix
from causalprint.residual.reference import MANIFEST_FILE
from causalprint.runtime.job_config import SHARED_SECTIONS, JobConfig
from causalprint.runtime.ray_local import ensure_ray
from causalprint.scan.config import ScanConfig, ScanOptions
from causalprint.scan.report import format_summary
from causalprint.storage import Storage
from causalprint.zoo.build import build_zoo
from causalprint.zoo.config import ZooConfig
from causalprint.zoo.report import format_zoo_table

log = logging.getLogger(__name__)

STAGES = ("zoo", "reference", "extract", "train", "scan")


class MainJobConfig(JobConfig):
    """One section per stage (each the config of that stage's job); storage, Ray and MLflow are shared: the
    training section takes the job's own."""

    zoo: ZooConfig
    reference: ReferenceTrainConfig
    extract: ExtractConfig
    train: train_job.TrainRegisterJobConfig
    scan: ScanOptions

    @model_validator(mode="before")
    @classmethod
    def _share_platform(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("train"), dict):
            own = [name for name in SHARED_SECTIONS if name in data["train"]]
            if own:
                raise ValueError(f"train.{own[0]}: set {own[0]} once, at the top of the main job's config")
            data = {**data, "train": {**data["train"], **{k: data[k] for k in SHARED_SECTIONS if k in data}}}
        return data


CONFIG = MainJobConfig


def preset(name: str) -> dict[str, Any]:
    """The main job's preset ``name``: the stage sections of each stage job's preset ``name``."""
    tree = {stage: load_preset(stage, name) for stage in STAGES}
    return {stage: tree[stage] if stage == "train" else tree[stage][stage] for stage in STAGES}


def preset_names() -> list[str]:
    """The names every stage has a preset of, except where the scan preset names its own source (the main job
    scans its zoo; such a preset belongs to a benchmark chain)."""
    from causalprint.config import read_yaml
    from causalprint.presets import PRESET_ROOT

    common = set.intersection(*(set(names_of(stage)) for stage in STAGES))
    # read_yaml, not load_preset: listing names must not count as reading the presets (results provenance).
    return sorted(n for n in common if "source" not in read_yaml(PRESET_ROOT / "scan" / f"{n}.yaml").get("scan", {}))


def _check_wiring(config: MainJobConfig, storage: Storage) -> None:
    """Each stage must read what the previous one wrote; a mismatch is refused with the keys named."""
    features = config.train.data.features  # one prefix, or several read as one table: the first is the clean one
    expected = {
        "extract.input": (config.extract.input, f"{config.zoo.prefix}/manifest.parquet"),
        "extract.reference": (config.extract.reference, reference_prefix(config.reference.name)),
        "train.data.features": (features if isinstance(features, str) else features[0], config.extract.output),
        "scan.reference": (config.scan.reference, config.extract.reference),
    }
    wrong = [
        f"{key}={have!r} (expected {want!r})"
        for key, (have, want) in expected.items()
        if storage.resolve(have) != storage.resolve(want)
    ]
    registered = f"models:/{config.train.model_name}"
    if not config.scan.model.startswith((f"{registered}@", f"{registered}/")):
        wrong.append(f"scan.model={config.scan.model!r} (expected a version or alias of {registered})")
    if wrong:
        raise ConfigError("the main job's stages do not connect: " + "; ".join(wrong))


def _reference(config: MainJobConfig, storage: Storage) -> dict[str, Any]:
    """Pretrain the reference model, or reuse the one stored: features and attributors already made with it
    stay valid (a retrained model has another identity, which extraction refuses to mix)."""
    prefix = reference_prefix(config.reference.name)
    if storage.exists(storage.uri(prefix, MANIFEST_FILE)):  # written last: the folder is complete
        log.info("reusing the reference model stored at %s (delete it to retrain)", storage.uri(prefix))
        return {"uri": storage.uri(prefix), "reused": True}
    return reference_train.run(reference_train.PretrainJobConfig(**config.shared(), reference=config.reference))


class MainReports(TypedDict):
    """Each stage's report, and the wall-clock seconds of each stage (``ray``: starting it)."""

    zoo: dict[str, Any]  # build_zoo's report
    reference: dict[str, Any]  # the reference job's, or {"uri", "reused": True}
    extract: ExtractSummary
    train: train_job.TrainSummary
    scan: dict[str, Any]  # the scan's summary
    seconds: dict[str, float]


def run(config: MainJobConfig) -> MainReports:
    """Run every stage in order on ``config``; prints each stage's report and returns them by stage, with each
    stage's wall-clock seconds under ``seconds``."""
    storage = Storage(config.storage)
    _check_wiring(config, storage)
    seconds: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(stage: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        seconds[stage] = round(now - clock, 1)
        clock = now

    ensure_ray(config.ray)
    lap("ray")
    shared = config.shared()
    zoo = build_zoo(storage, config.zoo)
    print(format_zoo_table(zoo))
    lap("zoo")
    reference = _reference(config, storage)
    print(f"reference model: {reference}")
    lap("reference")
    extracted = extract_job.run(extract_job.ExtractJobConfig(**shared, extract=config.extract))
    print(f"features: {extracted}")
    lap("extract")
    trained = train_job.run(config.train)
    print(
        f"attributor: {trained['model']} (promoted: {trained.get('promoted')}), "
        f"test accuracy {trained['metrics'].get('test_accuracy')}"
    )
    lap("train")
    scan = scan_job.run(
        scan_job.ScanJobConfig(
            **shared, scan=ScanConfig(source=storage.uri(config.zoo.prefix, "images"), **config.scan.model_dump())
        )
    )
    lap("scan")
    return {
        "zoo": zoo,
        "reference": reference,
        "extract": extracted,
        "train": trained,
        "scan": scan,
        "seconds": seconds,
    }


def format_model_quality(trained: train_job.TrainSummary) -> str:
    """How far to trust the scan's answers: the attributor's closed-set accuracy and recall per source on the
    zoo's held-out images, which it never trained on (the scan above also reads the images it trained on)."""
    metrics, data = trained["metrics"], trained["data"]
    lines = [
        f"the attributor ({trained['model']}) on {data['test_rows']} held-out images of its "
        f"{data['classes']} sources: test accuracy {metrics.get('test_accuracy', float('nan')):.3f} "
        f"(closed set; gate: {'promoted to champion' if trained.get('promoted') else 'not promoted'})"
    ]
    if trained.get("test_recall"):
        lines += ["", "| source | recall on held-out images |", "|---|---:|"]
        lines += [f"| {name} | {recall:.3f} |" for name, recall in trained["test_recall"].items()]
    return "\n".join(lines)


def format_main(reports: MainReports) -> str:
    """Markdown of one run of the main job: time per stage, the model's quality and the scan's answers."""
    seconds, zoo, scan = reports["seconds"], reports["zoo"], reports["scan"]
    sources = zoo["sources"]
    reused = [name for name, s in sources.items() if s.get("reused_weights")]
    lines = [
        f"Zoo `{zoo['zoo']}`: {len(sources)} sources ({', '.join(sources)}), {zoo['images']} images at "
        f"{zoo['image_size']}x{zoo['image_size']}"
        + (
            f"; weights reused from storage for {', '.join(reused)}"
            if reused
            else "; every generator trained by this run"
        )
        + (
            "; reference model reused from storage."
            if reports["reference"].get("reused")
            else "; reference model trained by this run."
        ),
        "",
        "| stage | seconds |",
        "|---|---:|",
    ]
    lines += [f"| {stage} | {s:.0f} |" for stage, s in seconds.items()]
    lines += [
        f"| **whole job** | **{sum(seconds.values()):.0f}** |",
        "",
        format_model_quality(reports["train"]),
        "",
        f"The scan of the zoo's folder (its train and held-out images): {scan['images']} images, "
        f"{scan['attributed']} attributed ({scan['unknown']} of them unknown), {scan['errors']} errors.",
        "",
        "| predicted source | images |",
        "|---|---:|",
    ]
    lines += [f"| {label} | {count} |" for label, count in scan["by_predicted"].items()]
    return "\n".join(lines)


def describe(reports: MainReports) -> str:
    """The scan's summary and how far to trust it."""
    return format_summary(reports["scan"]) + "\n\n" + format_model_quality(reports["train"])


def section(config: MainJobConfig, reports: MainReports, preset: str, docs_dir: Path) -> Section:
    return Section(f"main-{preset}", f"The main job `causalprint run` (`{preset}`)", format_main(reports))


def exit_code(reports: MainReports) -> int:
    """A model the gate refused is a failure too: the scan then answered with an older champion."""
    return 0 if reports["scan"]["attributed"] and train_job.exit_code(reports["train"]) == 0 else 1
