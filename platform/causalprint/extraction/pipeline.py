"""The extraction job: manifest or prefix -> decode -> residual actors -> feature actors -> Parquet parts.

The output prefix holds ``_extraction.json`` (reference model, modes, spaces); a rerun with a different
reference or spaces refuses to write there, so vectors of different reference models are never mixed.
"""

from __future__ import annotations

import logging
import time
from typing import Any, TypedDict

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from causalprint.data.collection import IMAGE_SUFFIXES, read_collection
from causalprint.data.parts import done_uris
from causalprint.extraction.actors import ExtractActor, load_reference
from causalprint.extraction.config import ActorConfig, ExtractJobConfig
from causalprint.imaging.intake import IntakeConfig
from causalprint.perturbations import perturb_batch
from causalprint.runtime.ray_local import ensure_ray, gpu_count
from causalprint.storage import Storage
from causalprint.zoo.manifest import read_manifest

log = logging.getLogger(__name__)
METADATA_COLUMNS = ("source", "arch", "family", "content_group", "split")


def select_inputs(storage: Storage, job: ExtractJobConfig) -> pa.Table:
    """The images to extract, with their manifest metadata (empty strings for a bare folder)."""
    cfg = job.extract
    source = storage.resolve(cfg.input)
    if source.endswith(".parquet"):
        manifest = read_manifest(storage, source)
        if cfg.splits:
            manifest = manifest.filter(pc.is_in(manifest["split"], pa.array(cfg.splits)))
        if cfg.sources:
            manifest = manifest.filter(pc.is_in(manifest["source"], pa.array(cfg.sources)))
        if cfg.per_source_limit:
            manifest = _limit_per_source(manifest, cfg.per_source_limit)
        return manifest.select(["uri", *METADATA_COLUMNS])
    uris = [f.uri for f in storage.list_files(source, IMAGE_SUFFIXES)]
    return pa.table({"uri": uris, **{c: [""] * len(uris) for c in METADATA_COLUMNS}})


def _limit_per_source(manifest: pa.Table, limit: int) -> pa.Table:
    """The first ``limit`` rows of each (source, split) in manifest order (stable: manifests are sorted)."""
    keep: list[int] = []
    seen: dict[tuple[Any, Any], int] = {}
    for i, key in enumerate(zip(manifest["source"].to_pylist(), manifest["split"].to_pylist())):
        seen[key] = seen.get(key, 0) + 1
        if seen[key] <= limit:
            keep.append(i)
    return manifest.take(keep)


def actor_resources(actors: ActorConfig) -> dict[str, Any]:
    """Ray resources of one actor of a pool: its CPUs, and GPUs where there are any."""
    gpus = actors.gpus_per_actor if actors.gpus_per_actor is not None else (0.5 if gpu_count() else 0)
    resources: dict[str, Any] = {"num_cpus": actors.num_cpus}
    if gpus:  # num_gpus=0 is still read as a GPU request by Ray Data, so leave it out on CPU
        resources["num_gpus"] = gpus
    if actors.resources:
        resources["resources"] = dict(actors.resources)
    return resources


def _check_metadata(storage: Storage, job: ExtractJobConfig, reference_id: str) -> None:
    cfg = job.extract
    assert job.intake is not None  # run() sets the intake from the reference model first
    uri = f"{storage.resolve(cfg.output)}/_extraction.json"
    want = {
        "reference_id": reference_id,
        "modes": cfg.modes,
        "spaces": [s.model_dump() for s in cfg.spaces],
        "image_size": job.intake.size,
    }
    if cfg.perturb:  # a clean extraction's record names no perturbations
        want["perturb"] = [p.model_dump() for p in cfg.perturb]
    if storage.exists(uri):
        have = storage.read_json(uri)
        if have != want:
            raise ValueError(
                f"{cfg.output} already holds features of another extraction ({have.get('reference_id')}, "
                f"modes {sorted(have.get('modes', {}))}); write to a new output prefix"
            )
    else:
        storage.write_json(uri, want)


def build_dataset(storage: Storage, job: ExtractJobConfig, pending: pa.Table):
    """The lazy Ray Data pipeline over ``pending`` rows (returns one row count per written part)."""
    from ray.data import ActorPoolStrategy

    cfg = job.extract
    assert job.intake is not None  # run() sets the intake from the reference model first
    metadata = {c: pending[c].to_pylist() for c in METADATA_COLUMNS}
    ds = read_collection(
        storage, "", job.intake, uris=pending["uri"].to_pylist(), metadata=metadata, batch_size=cfg.batch_size
    )
    if cfg.perturb:
        # Ray types a UDF as taking the batch alone; fn_kwargs passes the rest.
        ds = ds.map_batches(
            perturb_batch,  # type: ignore[arg-type]
            fn_kwargs={"specs": cfg.perturb},
            batch_size=cfg.batch_size,
            num_cpus=0.25,
        )
    # One pool does residual, features and the part write: on few cores a separate write stage waits behind
    # the actors' CPU budget and runs as a tail, and residual tensors would cross the object store.
    return ds.map_batches(
        ExtractActor,
        fn_constructor_kwargs={
            "storage": storage,
            "reference_uri": cfg.reference,
            "modes": cfg.modes,
            "precision": cfg.precision,
            "spaces": cfg.spaces,
            "image_size": job.intake.size,
            "output": cfg.output,
        },
        compute=ActorPoolStrategy(min_size=cfg.actors.min_actors, max_size=cfg.actors.max_actors),
        batch_size=cfg.batch_size,
        **actor_resources(cfg.actors),
    )


class ExtractSummary(TypedDict):
    """What an extraction returns: images listed, skipped (already written) and written, the rate, and where."""

    inputs: int
    skipped: int
    written: int
    seconds: float
    images_per_second: float
    reference_id: str
    output: str


def run_extract(job: ExtractJobConfig) -> ExtractSummary:
    """Extract every image not yet written under the output prefix; returns counts and the rate."""
    ensure_ray(job.ray)
    storage = Storage(job.storage)
    cfg = job.extract
    reference = load_reference(storage, cfg.reference)
    if job.intake is None:
        job = job.model_copy(update={"intake": IntakeConfig(size=reference.image_size)})
    elif reference.image_size != job.intake.size:
        raise ValueError(
            f"intake.size is {job.intake.size} but the reference model works at "
            f"{reference.image_size}; set intake.size={reference.image_size}"
        )
    _check_metadata(storage, job, reference.identity.id)
    inputs = select_inputs(storage, job)
    done = done_uris(storage, cfg.output)
    pending = inputs.filter(pa.array([u not in done for u in inputs["uri"].to_pylist()], pa.bool_()))
    log.info(
        "extract: %d images, %d already written, %d to do",
        inputs.num_rows,
        inputs.num_rows - pending.num_rows,
        pending.num_rows,
    )
    written, start = 0, time.perf_counter()
    if pending.num_rows:
        for batch in build_dataset(storage, job, pending).iter_batches(batch_size=None, batch_format="numpy"):
            written += int(np.sum(batch["written"]))
    seconds = time.perf_counter() - start
    summary: ExtractSummary = {
        "inputs": inputs.num_rows,
        "skipped": inputs.num_rows - pending.num_rows,
        "written": written,
        "seconds": round(seconds, 2),
        "images_per_second": round(written / seconds, 2) if written else 0.0,
        "reference_id": reference.identity.id,
        "output": storage.resolve(cfg.output),
    }
    log.info("extract: %s", summary)
    return summary
