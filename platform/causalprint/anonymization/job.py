"""``causalprint anonymize SOURCE --out PREFIX``: every image under SOURCE, anonymized on Ray Data actors into
``PREFIX/images/`` as PNG, with a per-image report (decision before and after, PSNR, SSIM, steps, seconds) in
``PREFIX/report/``. Resumable: a rerun skips the images already in the report, and a batch written again replaces
its part."""

from __future__ import annotations

import logging
import time
from pathlib import PurePosixPath
from typing import Any

import numpy as np
import pyarrow.compute as pc

from causalprint.anonymization.job_config import AnonymizeJobConfig
from causalprint.data.collection import read_collection
from causalprint.data.parts import batch_to_table, done_uris, read_parts, write_rows_part
from causalprint.extraction.pipeline import actor_resources
from causalprint.progress import ProgressLogger
from causalprint.runtime.ray_local import ensure_ray
from causalprint.scan.errors import ScanError
from causalprint.scan.image_attributor import ImageAttributor as AttributionPipeline
from causalprint.storage import Storage, list_source
from causalprint.tracking.mlflow_setup import tracking_uri_for

log = logging.getLogger(__name__)
REPORT, IMAGES = "report", "images"


def output_uri(storage: Storage, source: str, output: str, uri: str) -> str:
    """Where the anonymized PNG of ``uri`` goes: its path under ``source``, under ``output/images``, as .png."""
    relative = PurePosixPath(uri[len(source) :].lstrip("/"))
    return storage.uri(storage.relative(output), IMAGES, str(relative.with_suffix(".png")))


class AnonymizeActor:
    """One model load per worker; each ok image is anonymized, its PNG written, and the batch's report part."""

    def __init__(self, job: AnonymizeJobConfig, model_uri: str, tracking_uri: str, source: str, output: str) -> None:
        from causalprint.anonymization.path import FingerprintPath

        cfg = job.anonymize
        self.storage = Storage(job.storage)
        self.pipeline = AttributionPipeline(self.storage, model_uri, cfg.reference, tracking_uri=tracking_uri)
        self.path = FingerprintPath(self.pipeline)
        self.options = cfg.method.model_copy(update={"target": cfg.target})
        self.source, self.output = source, output

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        from causalprint.anonymization.method import anonymize

        n = len(batch["uri"])
        rows: dict[str, list[Any]] = {
            k: []
            for k in (
                "output",
                "removed",
                "before",
                "before_confidence",
                "after",
                "after_confidence",
                "succeeded",
                "psnr",
                "ssim",
                "max_change",
                "steps",
                "seconds",
            )
        }
        for i in range(n):
            result = (
                anonymize(self.pipeline, batch["image"][i], self.options, path=self.path) if batch["ok"][i] else None
            )
            out = output_uri(self.storage, self.source, self.output, str(batch["uri"][i])) if result else ""
            if result is not None:
                self.storage.write_bytes(out, result.png)  # atomic; written before its report row
            report = result.report() if result else {}
            rows["output"].append(out)
            rows["removed"].append(report.get("removed") or "")
            rows["before"].append(report["before"]["predicted"] if result else "")
            rows["before_confidence"].append(report["before"]["confidence"] if result else np.nan)
            rows["after"].append(report["after"]["predicted"] if result else "")
            rows["after_confidence"].append(report["after"]["confidence"] if result else np.nan)
            rows["succeeded"].append(bool(report.get("succeeded", False)))
            rows["psnr"].append(report["psnr"] if result and report["psnr"] is not None else np.nan)
            rows["ssim"].append(report["ssim"] if result else np.nan)
            rows["max_change"].append(report.get("max_change", -1))
            rows["steps"].append(report.get("steps", 0))
            rows["seconds"].append(report.get("seconds", 0.0))
        table = {
            "uri": batch["uri"],
            "ok": batch["ok"],
            "error_kind": batch["error_kind"],
            "error": batch["error"],
            **{k: np.array(v, dtype=object if isinstance(v[0], str) else None) for k, v in rows.items()},
        }
        written = write_rows_part(self.storage, f"{self.output}/{REPORT}", batch["uri"], batch_to_table(table))
        return {"written": np.array([written])}


def run_anonymize(job: AnonymizeJobConfig) -> dict[str, Any]:
    """Anonymize every image under ``anonymize.source`` not yet in the report; returns the summary."""
    from ray.data import ActorPoolStrategy

    from causalprint.scan.attributor import resolve_model

    storage = Storage(job.storage)
    cfg = job.anonymize
    source, output = storage.resolve(cfg.source), storage.resolve(cfg.output)
    listing = list_source(storage, source, cfg.ignore)
    if not listing.entries:
        raise ScanError(f"nothing to anonymize: {source} holds no files")
    tracking_uri = tracking_uri_for(job.mlflow, storage)
    model = resolve_model(cfg.model, tracking_uri)  # every actor loads this version, even if the alias moves
    check = AttributionPipeline(storage, model.uri, cfg.reference, tracking_uri=tracking_uri, device="cpu")
    intake = check.intake(job.intake)
    if cfg.target == "real" and "real" not in check.class_names:
        raise ScanError(f"{model.uri} has no 'real' class: use --target away")
    del check
    report = f"{output}/{REPORT}"
    done = done_uris(storage, report)
    pending = [e for e in listing.entries if e.uri not in done]
    log.info(
        "anonymize %s with %s into %s: %d files, %d done, %d to do",
        source,
        model.uri,
        output,
        len(listing.entries),
        len(done),
        len(pending),
    )
    start, written = time.perf_counter(), 0
    if pending:
        ensure_ray(job.ray)
        ds = read_collection(storage, "", intake, entries=pending, batch_size=cfg.batch_size).map_batches(
            AnonymizeActor,
            fn_constructor_kwargs={
                "job": job,
                "model_uri": model.uri,
                "tracking_uri": tracking_uri,
                "source": source,
                "output": output,
            },
            compute=ActorPoolStrategy(min_size=cfg.actors.min_actors, max_size=cfg.actors.max_actors),
            batch_size=cfg.batch_size,
            **actor_resources(cfg.actors),
        )
        progress = ProgressLogger("anonymize", len(pending), unit="images")
        for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
            count = int(batch["written"].sum())
            written += count
            progress.update(count)
    return {
        "source": source,
        "output": output,
        "model": model.uri,
        "target": cfg.target,
        "listed": len(listing.entries),
        "skipped": len(listing.entries) - len(pending),
        "written": written,
        "seconds": round(time.perf_counter() - start, 1),
        **summarize(storage, report),
    }


def summarize(storage: Storage, report: str) -> dict[str, Any]:
    """Counts and means over the whole report (every run)."""
    table = read_parts(storage, report)
    ok = table.filter(pc.field("ok"))
    named = ok.filter(pc.field("removed") != "")

    def mean(column: str) -> float:  # over changed images: an unchanged one has no PSNR (NaN in its row)
        values = np.asarray(ok[column].to_numpy(zero_copy_only=False), dtype=np.float64)
        values = values[np.isfinite(values)]
        return float(values.mean()) if values.size else float("nan")

    answers: dict[str, int] = {}  # what the scan answers instead, for the images whose source was named
    for removed, after in zip(named["removed"].to_pylist(), named["after"].to_pylist()):
        kind = (
            "still the source"
            if after == removed
            else "real"
            if after == "real"
            else "unknown"
            if after == "unknown"
            else "a family, exact model unknown"
            if "(" in after
            else "another known source"
        )
        answers[kind] = answers.get(kind, 0) + 1
    return {
        "images": table.num_rows,
        "errors": table.num_rows - ok.num_rows,
        "named_before": named.num_rows,
        "answers_after": answers,
        "unchanged": int(np.isnan(np.asarray(ok["psnr"].to_numpy(zero_copy_only=False), np.float64)).sum()),
        "removed": int(pc.sum(named["succeeded"]).as_py() or 0) if named.num_rows else 0,
        "mean_psnr": mean("psnr"),
        "mean_ssim": mean("ssim"),
        "mean_seconds": mean("seconds"),
    }


def format_anonymize_table(summary: dict[str, Any]) -> str:
    """The report's figures as a Markdown table (whole report, every run)."""
    named = summary["named_before"]
    share = f"{summary['removed']} of {named} ({100 * summary['removed'] / named:.1f} %)" if named else "n/a"
    return "\n".join(
        [
            "| images | unreadable | source named before | no longer named after | mean PSNR (changed) | mean SSIM | "
            "s per image |",
            "|---|---|---|---|---|---|---|",
            f"| {summary['images']} | {summary['errors']} | {named} | {share} | {summary['mean_psnr']:.1f} dB | "
            f"{summary['mean_ssim']:.3f} | {summary['mean_seconds']:.2f} |",
            "",
            "What the scan answers after, for the images whose source it named before: "
            + ", ".join(f"{kind} {n}" for kind, n in sorted(summary["answers_after"].items()))
            + ".",
            "",
            f"Model {summary['model']}; every score is the scan's decision on the written PNG. White-box only: the "
            f"transfer to an independently trained copy and to the baselines is not measured yet.",
        ]
    )


def format_anonymize(summary: dict[str, Any]) -> str:
    return "\n".join(
        [
            f"anonymized {summary['source']} with {summary['model']} (target {summary['target']}) into "
            f"{summary['output']}/images/",
            f"report {summary['output']}/report/: {summary['images']} images, {summary['errors']} unreadable; "
            "the model "
            f"named a source for {summary['named_before']}, and no longer names it for {summary['removed']}",
            f"{summary['unchanged']} left unchanged (no source named); over the changed ones mean PSNR "
            f"{summary['mean_psnr']:.1f} dB, mean SSIM {summary['mean_ssim']:.3f}, "
            f"{summary['mean_seconds']:.2f} s per image; this run: {summary['written']} written, "
            f"{summary['skipped']} already done, {summary['seconds']} s",
        ]
    )
