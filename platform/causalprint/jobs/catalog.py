"""Every job of the platform, in the order ``causalprint --help`` lists them. The CLI and ``jobs/run.py`` are built
from this list: adding a job is one module under :mod:`causalprint.jobs`, one entry here and its presets."""

from __future__ import annotations

import argparse

from causalprint.jobs.spec import Argument, JobSpec


def _count(text: str) -> int:
    """A non-negative integer argument."""
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text[:40]!r}")
    return int(text)


def _model(section: str) -> Argument:
    return Argument(("--model",), "attributor URI (default: the preset's champion)", key=f"{section}.model")


JOBS: tuple[JobSpec, ...] = (
    JobSpec(
        "run",
        "main",
        "the main job: zoo, reference, features, attributor (registered), scan of the zoo",
        preset_kind="main",
        default_preset="demo",
        results=True,
    ),
    JobSpec(
        "zoo build",
        "zoo_build",
        "train the generators, sample them and write images + manifest",
        preset_kind="zoo",
        results=True,
    ),
    JobSpec(
        "zoo tile",
        "zoo_tile",
        "a zoo of native tiles of the model's size, cut from a zoo of larger images",
        preset_kind="zoo_tile",
        default_preset="tiles64",
    ),
    JobSpec(
        "zoo noise",
        "zoo_noise",
        "per-layer noise strengths of the zoo's StyleGANs, read from their weights",
        preset_kind="zoo",
        results=True,
    ),
    JobSpec(
        "reference train",
        "reference_train",
        "train the reference diffusion model on real images",
        preset_kind="reference",
    ),
    JobSpec("extract", "extract", "residuals and feature vectors of a manifest or a prefix", preset_kind="extract"),
    JobSpec("ssl train", "ssl_train", "train the ssl encoder on residuals of real images", preset_kind="ssl"),
    JobSpec(
        "train",
        "train",
        "fit the decoupling model on Ray Train and register it in MLflow",
        preset_kind="train",
        results=True,
    ),
    JobSpec(
        "evaluate",
        "evaluate",
        "ours against the baselines: clean, perturbed, content shift, open set",
        preset_kind="evaluate",
        default_preset="bench",
        results=True,
    ),
    JobSpec(
        "evaluate-intake",
        "evaluate_intake",
        "whole images of a larger zoo read as native tiles and resized, scored as the scan decides them",
        preset_kind="evaluate_intake",
        default_preset="tiles64",
        results=True,
    ),
    JobSpec(
        "study",
        "study",
        "train variants that differ in their architecture-only instances or columns",
        preset_kind="study",
        default_preset="bench-layer",
        results=True,
    ),
    JobSpec("probe", "probe", "separability of every residual mode x feature space", preset_kind="probe", results=True),
    JobSpec(
        "unseen",
        "unseen",
        "generated images of a family never seen: each family held out whole, the generated head against real",
        preset_kind="unseen",
        results=True,
    ),
    JobSpec(
        "scan",
        "scan",
        "attribute every image of a folder or bucket prefix; a resumable Parquet report",
        preset_kind="scan",
        results=True,
        arguments=(
            Argument(
                ("source",),
                "folder or prefix of images: inside the configured storage root, or a "
                "full URI (s3://bucket/prefix, /path) inside one of the allowed `sources`",
                key="scan.source",
            ),
            _model("scan"),
            Argument(
                ("--show",),
                "also print the report's first N rows: file, decision, confidence, error",
                options={"type": _count, "default": 0, "metavar": "N"},
            ),
            Argument(
                ("--retry-errors",),
                "read the report's error rows again (rows marked retryable are always read again)",
                key="scan.retry_errors",
                options={"action": "store_true", "default": None},
            ),
        ),
    ),
    JobSpec(
        "report",
        "report",
        "print or export the rows of a scan report (one image's answer)",
        arguments=(
            Argument(("prefix",), "the report folder a scan printed (report: ...), inside storage", key="prefix"),
            Argument(
                ("--show",),
                "the first N rows, by file (default 20)",
                options={"type": _count, "default": 20, "metavar": "N"},
            ),
            Argument(("--all",), "every row", options={"action": "store_true"}),
            Argument(
                ("--format",),
                "table (escaped, for the terminal), csv or jsonl (every column, for a file)",
                options={"choices": ("table", "csv", "jsonl"), "default": "table"},
            ),
        ),
    ),
    JobSpec(
        "enrol",
        "enrol",
        "add a new source to a registered attributor from a few of its images: a new version, no retraining",
        preset_kind="enrol",
        arguments=(
            Argument(
                ("images",), "folder or prefix of the new source's images, inside the storage root", key="enrol.images"
            ),
            Argument(
                ("--source",), "the new source's name, e.g. my-gan-v2", key="enrol.source", options={"required": True}
            ),
            Argument(
                ("--family",), "its family: gan, diffusion, vae, ...", key="enrol.family", options={"required": True}
            ),
            _model("enrol"),
            Argument(
                ("--alias",),
                "alias of the new version (default: candidate; only the gate moves champion)",
                key="enrol.alias",
            ),
        ),
    ),
    JobSpec(
        "anonymize",
        "anonymize",
        "remove the source's fingerprint from every image of a folder or prefix: "
        "PNGs and a per-image report, resumable",
        preset_kind="anonymize",
        default_preset="demo",
        results=True,
        arguments=(
            Argument(
                ("source",), "folder or prefix of images, inside the configured storage root", key="anonymize.source"
            ),
            Argument(
                ("--out",),
                "prefix for the anonymized PNGs and the report",
                key="anonymize.output",
                options={"required": True},
            ),
            _model("anonymize"),
            Argument(
                ("--target",),
                "the counterfactual: the real class (default) or away from the named source",
                key="anonymize.target",
                options={"choices": ("real", "away")},
            ),
        ),
    ),
    JobSpec(
        "evaluate-anonymization",
        "evaluate_anonymization",
        "the anonymization against ours, an independent "
        "copy and the baselines: accuracy, PSNR/SSIM, naive removals, forgery, re-save, time",
        preset_kind="evaluate_anonymization",
        default_preset="demo",
        results=True,
    ),
    JobSpec(
        "ablate",
        "ablate",
        "retrain the attributor without a part (residual columns, image spectra, decoupling terms) and score "
        "every variant on the evaluation's rows",
        preset_kind="ablate",
        default_preset="core",
        results=True,
    ),
    JobSpec(
        "serve",
        "serve",
        "start the Serve application (attribution, verification, enrolment, web page) and print its URL",
        preset_kind="serve",
        default_preset="demo",
    ),
    JobSpec(
        "inventory",
        "inventory",
        "read a folder or bucket prefix of images and report failures",
        arguments=(
            Argument(("prefix",), "folder or prefix, inside the configured storage root", key="prefix"),
            Argument(("--manifest",), "a zoo manifest, to count images per source", key="manifest"),
        ),
    ),
    JobSpec(
        "bench run",
        "bench_run",
        "a whole benchmark: every stage of the preset (zoo to scan) in order, resumable, figures with --results",
        preset_kind="bench_run",
        results=True,
    ),
    JobSpec(
        "bench extract",
        "bench_extract",
        "throughput of residual modes and of the Ray pipeline",
        preset_kind="bench_extract",
        results=True,
    ),
    JobSpec(
        "bench scale",
        "bench_scale",
        "a synthetic archive of many tiny objects on a local S3 server: the listing's memory, a scan of one shard",
        preset_kind="bench_scale",
        results=True,
    ),
    JobSpec(
        "bench nodes",
        "bench_nodes",
        "scan throughput against worker nodes of a local Ray cluster, projected to N GPU nodes",
        preset_kind="bench_nodes",
        results=True,
    ),
    JobSpec(
        "bench device-kit",
        "bench_device_kit",
        "copy an attributor, its reference model and held-out images for `bench device`",
        preset_kind="bench_device",
    ),
    JobSpec(
        "bench device",
        "bench_device",
        "the attribution path on each device (CPU, CUDA) in one process; needs a device kit",
        preset_kind="bench_device",
        results=True,
    ),
    JobSpec(
        "bench serve",
        "bench_serve",
        "the Serve app under load on 127.0.0.1: latency, batched vs unbatched, replicas over a ramp, a champion change",
        preset_kind="bench_serve",
        default_preset="demo",
        results=True,
    ),
)

# Groups of two-word commands, with their help.
GROUPS = {
    "zoo": "the generator zoo",
    "reference": "the reference diffusion model",
    "ssl": "the self-supervised feature space",
    "bench": "benchmarks",
}
