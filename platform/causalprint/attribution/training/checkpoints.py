"""Checkpoints: folders of safetensors + JSON, never pickles, and the run's checkpoints in storage.

A run's checkpoints live under ``<storage root>/<scaling.checkpoint_prefix>/<name>/epoch_NNNN/``::

    model/                    config.json + model.safetensors (+ extras.json): CausalDecoupler.save_pretrained
    optimizer.safetensors     every tensor of the optimizer state, keyed "<param index>.<name>"
    optimizer.json            the rest: param groups (lr, betas, ...) and non-tensor state
    epoch.json                {"epoch": epochs done, "history": [per-epoch metrics], "recipe": the data config
                              and the train options that shape the trajectory (TrainJobConfig.recipe)}
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import Tensor

from causalprint.attribution.dataset import AttributionData, DataConfig
from causalprint.attribution.model import CausalDecoupler, DecouplerConfig
from causalprint.attribution.training.config import TrainJobConfig
from causalprint.storage import Storage

__all__ = [
    "CheckpointState",
    "check_existing_run",
    "load_checkpoint",
    "MODEL_DIR",
    "run_root",
    "save_checkpoint",
    "select_checkpoint",
    "SELECT_METRIC",
    "stored_checkpoints",
]

MODEL_DIR = "model"
EPOCH_NAME = "epoch.json"
OPTIMIZER_TENSORS = "optimizer.safetensors"
OPTIMIZER_JSON = "optimizer.json"
SELECT_METRIC = "val_accuracy"
CHECKPOINT_FILES = (
    f"{MODEL_DIR}/config.json",
    f"{MODEL_DIR}/model.safetensors",
    OPTIMIZER_TENSORS,
    OPTIMIZER_JSON,
    EPOCH_NAME,
)


def _optimizer_to_files(optimizer: torch.optim.Optimizer) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """Split an optimizer state dict into flat tensors and JSON (param groups, non-tensor state)."""
    state = optimizer.state_dict()
    tensors: dict[str, Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for index, values in state["state"].items():
        for key, value in values.items():
            if isinstance(value, Tensor):
                tensors[f"{index}.{key}"] = value.detach().contiguous().cpu()
            else:
                scalars.setdefault(str(index), {})[key] = value
    return tensors, {"param_groups": state["param_groups"], "scalar_state": scalars}


def _optimizer_from_files(tensors: dict[str, Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        index, key = name.split(".", 1)
        state.setdefault(int(index), {})[key] = value
    for index, values in meta["scalar_state"].items():
        state.setdefault(int(index), {}).update(values)
    groups = [{k: tuple(v) if k == "betas" else v for k, v in g.items()} for g in meta["param_groups"]]
    return {"state": state, "param_groups": groups}


def save_checkpoint(
    directory: str | Path,
    model: CausalDecoupler,
    optimizer: torch.optim.Optimizer,
    epoch: int,
    history: list[dict[str, float]],
    recipe: dict[str, Any] | None = None,
) -> Path:
    """Write a checkpoint folder (layout in the module docstring)."""
    directory = Path(directory)
    model.save_pretrained(directory / MODEL_DIR)
    tensors, meta = _optimizer_to_files(optimizer)
    save_file(tensors, str(directory / OPTIMIZER_TENSORS))
    (directory / OPTIMIZER_JSON).write_text(json.dumps(meta, indent=2))
    info = {"epoch": epoch, "history": history, **({"recipe": recipe} if recipe is not None else {})}
    (directory / EPOCH_NAME).write_text(json.dumps(info, indent=2))
    return directory


@dataclass
class CheckpointState:
    """What a checkpoint folder holds: the model (eval mode), the optimizer state dict, epochs done, history."""

    model: CausalDecoupler
    optimizer_state: dict[str, Any]
    epoch: int
    history: list[dict[str, float]]


def load_checkpoint(directory: str | Path, map_location: str | torch.device = "cpu") -> CheckpointState:
    directory = Path(directory)
    model = CausalDecoupler.from_pretrained(directory / MODEL_DIR, map_location=map_location)
    optimizer_state = _optimizer_from_files(
        load_file(str(directory / OPTIMIZER_TENSORS)), json.loads((directory / OPTIMIZER_JSON).read_text())
    )
    epoch_info = json.loads((directory / EPOCH_NAME).read_text())
    return CheckpointState(model, optimizer_state, int(epoch_info["epoch"]), list(epoch_info["history"]))


def run_root(job: TrainJobConfig, storage: Storage) -> str:
    """The storage URI of the run's Ray Train folder (``<root>/<checkpoint_prefix>/<name>``)."""
    return storage.uri(job.scaling.checkpoint_prefix, job.name)


def stored_checkpoints(job: TrainJobConfig, storage: Storage) -> dict[int, str]:
    """Epoch -> URI of every complete checkpoint folder of the run in storage (a folder that a killed upload
    left half-written is not complete, and is not listed)."""
    root = run_root(job, storage)
    files: dict[str, set[str]] = {}
    for info in storage.list_files(root):
        folder, _, rest = info.uri[len(root) :].strip("/").partition("/")
        if folder.startswith("epoch_") and rest:
            files.setdefault(folder, set()).add(rest)
    return {
        int(folder.removeprefix("epoch_")): f"{root}/{folder}"
        for folder, names in files.items()
        if set(CHECKPOINT_FILES) <= names
    }


def _without_class_lists(recipe: dict[str, Any]) -> dict[str, Any]:
    if "data" not in recipe:
        return recipe
    lists = ("class_sources", "excluded_sources")
    return {**recipe, "data": {k: v for k, v in recipe["data"].items() if k not in lists}}


def check_existing_run(job: TrainJobConfig, storage: Storage, data: AttributionData) -> int:
    """Epochs already checkpointed under this run's name (0 if none); refuses checkpoints of another model, or
    of the same model trained on other data or with other train options (:meth:`TrainJobConfig.recipe`; more
    epochs extend a constant-rate run)."""
    stored = stored_checkpoints(job, storage)
    if not stored:
        return 0
    latest = max(stored)
    raw = storage.read_json(f"{stored[latest]}/{MODEL_DIR}/config.json")
    found = DecouplerConfig.model_validate({k: v for k, v in raw.items() if not k.startswith("_")})
    expected = job.decoupler_config(data)
    if found != expected:
        changed = {
            k: (getattr(found, k), getattr(expected, k))
            for k in DecouplerConfig.model_fields
            if getattr(found, k) != getattr(expected, k)
        }
        raise ValueError(
            f"run {job.name!r} already has checkpoints of another model or data under "
            f"{run_root(job, storage)} (changed, as (checkpoint, job): {changed}): choose a new name"
        )
    # Checkpoints from before recipes were recorded all trained at a constant rate.
    recorded = storage.read_json(f"{stored[latest]}/{EPOCH_NAME}").get("recipe")
    found_recipe = recorded or {"schedule": "constant"}
    wanted = job.recipe()
    if recorded and "data" in recorded:  # defaults of DataConfig fields added since the run was recorded
        found_recipe = {**recorded, "data": DataConfig.model_validate(recorded["data"]).model_dump(mode="json")}
    # Which sources are classes is pinned by the class names compared above, not by the list that names them
    # (class_sources) or the one that drops the rest (excluded_sources). So a source added to the zoo and to the
    # excluded list since (a new shift round, say), or the same classes named the other way, leave the run
    # resumable; a change of the rows cannot.
    found_recipe = _without_class_lists(found_recipe)
    wanted = _without_class_lists(wanted)
    # Over the recorded keys (a legacy checkpoint records only its schedule); ``epochs`` is pinned only by a
    # cosine recipe, so a job switching to constant has none.
    changed = {k: (v, wanted.get(k)) for k, v in found_recipe.items() if wanted.get(k) != v}
    if "data" in changed:  # name the fields, not two whole configs
        have, want = changed.pop("data")
        changed.update(
            {f"data.{k}": (have.get(k), want.get(k)) for k in sorted({*have, *want}) if have.get(k) != want.get(k)}
        )
    if changed:
        legacy = (
            "" if recorded else (" (these checkpoints predate recorded recipes: train.schedule=constant resumes them)")
        )
        raise ValueError(
            f"run {job.name!r} already has checkpoints trained with another recipe under "
            f"{run_root(job, storage)} (changed, as (checkpoint, job): {changed}){legacy}: choose a "
            f"new name"
        )
    return latest


def select_checkpoint(job: TrainJobConfig, storage: Storage) -> tuple[int, str, list[dict[str, float]]]:
    """``(epoch, folder URI, history)`` of the checkpoint that becomes the model: the last one, or the best by
    val_accuracy (ties: lower val_nll, then the later epoch) among those still stored, up to ``train.epochs``
    (a run trained further by another job keeps its later checkpoints out of this job's choice)."""
    stored = {e: uri for e, uri in stored_checkpoints(job, storage).items() if e <= job.train.epochs}
    if not stored:
        raise RuntimeError(f"no complete checkpoint of epochs 1..{job.train.epochs} under {run_root(job, storage)}")
    latest = max(stored)
    history = storage.read_json(f"{stored[latest]}/{EPOCH_NAME}")["history"]
    if job.train.select == "last":
        return latest, stored[latest], history
    by_epoch = {int(h["epoch"]): h for h in history}
    best = max(stored, key=lambda e: (by_epoch[e].get(SELECT_METRIC, -np.inf), -by_epoch[e].get("val_nll", np.inf), e))
    return best, stored[best], history
