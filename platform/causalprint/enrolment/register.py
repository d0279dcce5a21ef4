"""A folder of a new source's images -> fingerprint codes -> one more prototype -> a new registered version.

Every refusal comes before anything is registered, and most before an image is read: the images lie inside
storage, the model URI names a registered version, the reference model is the one it was trained on, and the
names are free; too few readable images are refused after reading. The images are
read and decoded as the scan reads them (a bad file is reported and skipped) and go through the scan's own
attribution path (:class:`~causalprint.scan.image_attributor.ImageAttributor`), so the codes are the
ones a scan computes. The parent version is never changed: its weights, calibration and trained prototypes are
copied into the new version, which only adds the enrolled prototype.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from causalprint.attribution.prototype_enrolment import (
    EnrolmentCheck,
    check_names,
    enrol_source,
    enrolled_sources,
)
from causalprint.attribution.training.mlflow_run import KIND_TAG
from causalprint.data.collection import DEFAULT_IGNORE, decode_rows
from causalprint.enrolment.config import EnrolJobConfig
from causalprint.enrolment.errors import EnrolmentError
from causalprint.imaging.tiles import AttributionIntakeConfig
from causalprint.progress import ProgressLogger
from causalprint.scan.attributor import ModelRef
from causalprint.scan.image_attributor import ImageAttributor
from causalprint.storage import Storage, list_source
from causalprint.tracking.artifacts import ARTIFACT_PATH, REPORT_PATH, LoadedAttributor
from causalprint.tracking.mlflow_setup import tracking_uri_for
from causalprint.tracking.versions import RegisteredVersion, log_version, parse_model_uri

log = logging.getLogger(__name__)

REPORT_NAME = "enrolment.json"
_SHOWN_ERRORS = 5  # a refusal lists this many unreadable files


def _registered(uri: str) -> tuple[str, str | None, str | None]:
    """``(name, version, alias)`` of a ``models:/`` URI; any other (a ``runs:/`` URI, say) has no registered name
    that a new version could join."""
    try:
        return parse_model_uri(uri)
    except ValueError:
        raise EnrolmentError(
            f"enrolment registers a new version of a registered model, and {uri!r} is not one: "
            f"use models:/<name>@<alias> or models:/<name>/<version>"
        ) from None


def _codes(
    pipeline: ImageAttributor,
    storage: Storage,
    uris: list[str],
    sizes: list[int],
    intake: AttributionIntakeConfig,
    batch_size: int,
) -> tuple[np.ndarray, list[dict[str, str]]]:
    """Fingerprint codes ``[n, F]`` of the readable images (an image read as tiles: the mean of its tiles'
    normalised codes, :func:`~causalprint.scan.tile_decision.image_codes`), and one ``{uri, error_kind, error}``
    per other file."""
    progress = ProgressLogger("enrol", len(uris), unit="images")
    codes, errors = [], []
    for start in range(0, len(uris), batch_size):
        batch = decode_rows(
            {
                "uri": np.array(uris[start : start + batch_size], dtype=object),
                "size": np.array(sizes[start : start + batch_size]),
            },
            storage,
            intake,
        )
        ok = batch["ok"]
        errors += [
            {"uri": str(batch["uri"][i]), "error_kind": str(batch["error_kind"][i]), "error": str(batch["error"][i])}
            for i in np.flatnonzero(~ok)
        ]
        if ok.any():
            tiles = batch["tiles"][ok] if "tiles" in batch else None
            codes.append(np.asarray(pipeline.tile_decisions(batch["image"][ok], tiles).codes.fp, dtype=np.float64))
        progress.update(len(ok))
    return (np.concatenate(codes) if codes else np.zeros((0, 0))), errors


def register_enrolled(
    client: Any,
    attributor: LoadedAttributor,
    parent: ModelRef,
    check: EnrolmentCheck,
    *,
    images: str,
    errors: list[dict[str, str]],
    alias: str,
) -> RegisteredVersion:
    """Register ``attributor`` (``parent`` with ``check.source`` enrolled) as a new version of the parent's
    name, in a run that is a child of the parent version's run. Its metrics are the enrolment check's only: the
    gate, which needs an evaluation, refuses it until one is logged."""
    name, number, _ = _registered(parent.uri)  # pinned: a version, never an alias
    parent_version = client.get_model_version(name, number)
    parent_run = client.get_run(parent_version.run_id)
    metrics = {f"enrol_{k}": v for k, v in check.to_json().items() if isinstance(v, (int, float))}
    params = {
        "enrolled_from": parent.uri,
        "source": check.source,
        "family": check.family,
        "images": images,
        "samples": check.samples,
        "reference_id": attributor.requirements["reference_id"],
        "columns": ",".join(attributor.requirements["columns"]),
    }
    report = {
        "enrolled_from": parent.uri,
        "images": images,
        "check": check.to_json(),
        "unreadable": errors,
        "prototypes": [str(label) for label in attributor.calibration.prototypes.labels_],
    }

    def write(folder: Path) -> None:
        attributor.save(folder / ARTIFACT_PATH)
        (folder / REPORT_PATH).mkdir()
        (folder / REPORT_PATH / REPORT_NAME).write_text(json.dumps(report, indent=2))

    # The parent's tags say what the weights need (reference, columns); its gate decision is not this version's.
    tags = {k: v for k, v in parent_version.tags.items() if not k.startswith("gate.")}
    tags.update(enrolled_from=parent.uri, enrolled_sources=json.dumps(enrolled_sources(attributor)))
    return log_version(
        client,
        model_name=name,
        experiment_id=parent_run.info.experiment_id,
        run_name=f"enrol-{check.source}",
        tags={KIND_TAG: "attributor-enrolment", "mlflow.parentRunId": parent_version.run_id},
        params=params,
        metrics=metrics,
        write=write,
        version_tags=tags,
        alias=alias,
        description=f"{parent.uri} with {check.source!r} ({check.family}) enrolled from {check.samples} images "
        f"under {images}; weights and the trained classes' calibration unchanged",
    )


def enrol_images(job: EnrolJobConfig) -> dict[str, Any]:
    """Enrol ``enrol.source`` from the images under ``enrol.images`` into ``enrol.model``; returns a summary."""
    import mlflow

    start = time.perf_counter()
    storage = Storage(job.storage)
    cfg = job.enrol
    images = storage.resolve(cfg.images)  # refuse what lies outside storage
    _registered(cfg.model)
    # Every file, whatever its suffix: one that is not an image is reported as unreadable, never dropped unseen.
    files = list_source(storage, images, DEFAULT_IGNORE).entries
    if not files:
        raise EnrolmentError(f"no files under {images}")
    tracking_uri = tracking_uri_for(job.mlflow, storage)
    # On the CPU: a few images do not pay for an accelerator context, and the codes are the same (float32).
    pipeline = ImageAttributor(
        storage, cfg.model, cfg.reference, tracking_uri=tracking_uri, decision="prototypes", device="cpu"
    )
    parent = pipeline.model
    assert parent is not None  # built from a model URI, so it holds its registry reference
    check_names(pipeline.attributor, cfg.source, cfg.family)
    intake = pipeline.attribution_intake(job.intake)
    if len(files) > cfg.max_images:
        raise EnrolmentError(
            f"{len(files)} images under {images}; enrolment reads at most {cfg.max_images} "
            f"(enrol.max_images): a few dozen suffice"
        )
    log.info("enrol %r (%s) into %s from %d files under %s", cfg.source, cfg.family, parent.uri, len(files), images)
    codes, errors = _codes(pipeline, storage, [f.uri for f in files], [f.size for f in files], intake, cfg.batch_size)
    if len(codes) < cfg.min_images:
        shown = "; ".join(f"{e['uri']}: {e['error_kind']} ({e['error']})" for e in errors[:_SHOWN_ERRORS])
        raise EnrolmentError(
            f"{len(codes)} of {len(files)} images under {images} could be read; enrolment needs "
            f"at least {cfg.min_images} (enrol.min_images). Unreadable: {shown}"
        )
    enrolled, check = enrol_source(pipeline.attributor, cfg.source, cfg.family, codes)
    client = mlflow.MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    version = register_enrolled(client, enrolled, parent, check, images=images, errors=errors, alias=cfg.alias)
    return {
        "model": version.uri,
        "alias": cfg.alias,
        "enrolled_from": parent.uri,
        "images": images,
        "listed": len(files),
        "read": len(codes),
        "unreadable": errors,
        "check": check.to_json(),
        "enrolled_sources": enrolled_sources(enrolled),
        "run_id": version.run_id,
        "seconds": round(time.perf_counter() - start, 1),
    }
