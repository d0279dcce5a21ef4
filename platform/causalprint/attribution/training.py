"""Train the causal decoupler on Ray Train, checkpointing to storage, then calibrate it for open-set decisions.

The job (:func:`run_training`):

1. starts (or reopens, by its name) an MLflow run and logs the job's parameters;
2. runs :func:`train_loop_per_worker` on ``scaling.num_workers`` Ray Train workers. Each worker reads the
   extraction output from storage itself, shards every epoch's shuffled rows by world rank, and after every
   epoch reports its validation metrics; rank 0 also reports a checkpoint and logs the epoch to MLflow;
3. loads the best (or last) checkpoint from storage, fits the calibration (:class:`Calibration`) on the
   validation rows and evaluates on the test rows (known sources) and the held-out sources (unknowns).

A run whose checkpoints already reach ``train.epochs`` skips step 2.

Checkpoints are folders, never pickles (``<storage root>/<scaling.checkpoint_prefix>/<name>/epoch_NNNN/``)::

    model/                    config.json + model.safetensors (+ extras.json): CausalDecoupler.save_pretrained
    optimizer.safetensors     every tensor of the optimizer state, keyed "<param index>.<name>"
    optimizer.json            the rest: param groups (lr, betas, ...) and non-tensor state
    epoch.json                {"epoch": epochs done, "history": [per-epoch metrics], "recipe": the data config
                              and the train options that shape the trajectory (TrainJobConfig.recipe)}

Resuming: a worker restarted by ``FailureConfig(max_failures)`` gets the latest checkpoint from
``ray.train.get_checkpoint()`` and continues with the next epoch, optimizer state included. A killed driver is
resumed by running the job again under the same ``name``: in Ray 2.60 (Train V2) ``TorchTrainer.can_restore``
and ``TorchTrainer.restore`` only raise a DeprecationWarning; a new trainer with the same
``RunConfig(name, storage_path)`` restores the run's checkpoint state itself, and the MLflow run tagged with the
name is reopened. Every epoch reseeds the shuffle and torch's generator from (seed, epoch, rank), so a resumed
run sees the same data order and random draws as an uninterrupted one.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field, create_model
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from causalprint.attribution.dataset import AttributionData, DataConfig, load_attribution_data
from causalprint.attribution.model import CausalDecoupler, DecouplerConfig, train_epoch
from causalprint.attribution.openset import (
    OpenSetAttributor,
    Prototypes,
    auroc,
    expected_calibration_error,
    oscr,
)
from causalprint.attribution.schedule import Schedule, epoch_lr, set_lr
from causalprint.config import StrictModel
from causalprint.runtime.ray_local import RayConfig
from causalprint.storage import Storage, StorageConfig
from causalprint.tracking.mlflow_setup import MlflowConfig

log = logging.getLogger(__name__)

__all__ = [
    "Calibration", "DecouplerOptions", "ScalingOptions", "TrainJobConfig", "TrainOptions", "TrainResult",
    "calibrate", "evaluate", "load_checkpoint", "run_root", "run_training", "save_checkpoint", "select_checkpoint",
    "stored_checkpoints", "train_loop_per_worker",
]

MODEL_DIR = "model"
EPOCH_NAME = "epoch.json"
OPTIMIZER_TENSORS = "optimizer.safetensors"
OPTIMIZER_JSON = "optimizer.json"
CALIBRATION_NAME = "calibration.json"
RUN_TAG = "causalprint.train_name"
KIND_TAG = "causalprint.kind"  # what a run that is not a training run holds (a version's registration, ...)
SELECT_METRIC = "val_accuracy"
CHECKPOINT_FILES = (f"{MODEL_DIR}/config.json", f"{MODEL_DIR}/model.safetensors", OPTIMIZER_TENSORS, OPTIMIZER_JSON,
                    EPOCH_NAME)

# ----- configuration -----

_DERIVED = ("input_dim", "num_classes", "class_names", "architectures")  # come from the data, not the config

DecouplerOptions = create_model(
    "DecouplerOptions",
    __base__=StrictModel,
    __module__=__name__,
    __doc__="The fields of DecouplerConfig that a job sets: all but those the data gives (_DERIVED).",
    **{name: (info.annotation, info) for name, info in DecouplerConfig.model_fields.items() if name not in _DERIVED},
)


class TrainOptions(StrictModel):
    """Optimisation and calibration."""

    epochs: int = Field(default=20, ge=1)
    batch_size: int = Field(default=128, ge=2, description="global: each of W workers takes batch_size // W")
    lr: float = Field(default=1e-3, gt=0)
    schedule: Schedule = Field(default="cosine", description="learning rate per epoch: constant, or a cosine "
                                                             "decay from lr towards 0 over the epochs")
    weight_decay: float = Field(default=1e-4, ge=0)
    seed: int = 0
    select: Literal["best", "last"] = Field(
        default="best", description="the checkpoint that becomes the model: best val_accuracy (ties: lower "
                                    "val_nll, then later) or the last one")
    target_tpr: float = Field(default=0.95, gt=0, le=1, description="known validation rows the threshold accepts")
    family_threshold: float = Field(default=0.9, gt=0, le=1)


class ScalingOptions(StrictModel):
    """Where and how many workers train, and where their checkpoints go."""

    num_workers: int = Field(default=1, ge=1)
    use_gpu: bool = False
    cpus_per_worker: float = Field(default=1.0, gt=0)
    checkpoint_prefix: str = Field(default="train", min_length=1, description="runs go to <prefix>/<name>/")
    max_failures: int = Field(default=1, ge=-1, description="worker-group restarts from the latest checkpoint")
    keep_checkpoints: int | None = Field(default=3, ge=1, description="best by val_accuracy; the latest is "
                                                                      "always kept. None: keep all")


class TrainJobConfig(StrictModel):
    """One training run; ``name`` identifies it (checkpoints, MLflow run), so a rerun resumes it."""

    name: str = Field(default="default", pattern=r"^[a-z0-9][a-z0-9_-]*$")
    storage: StorageConfig = StorageConfig()
    ray: RayConfig = RayConfig()
    mlflow: MlflowConfig = MlflowConfig()
    data: DataConfig
    model: DecouplerOptions = Field(default_factory=DecouplerOptions)  # type: ignore[valid-type]
    train: TrainOptions = TrainOptions()
    scaling: ScalingOptions = ScalingOptions()

    def recipe(self) -> dict[str, Any]:
        """What a resumed run must share with its checkpoints besides the model config: the rows it trains on
        (``data``) and the train options that shape the trajectory. ``epochs`` may grow at a constant rate; a
        cosine schedule's length is part of it (more epochs would restart the decay midway), so it is pinned."""
        keys = ("lr", "schedule", "batch_size", "weight_decay", "seed")
        return {"data": self.data.model_dump(mode="json"), **{k: getattr(self.train, k) for k in keys},
                **({"epochs": self.train.epochs} if self.train.schedule == "cosine" else {})}

    def decoupler_config(self, data: AttributionData) -> DecouplerConfig:
        config = DecouplerConfig(input_dim=data.input_dim, num_classes=data.num_classes,
                                 class_names=data.class_names, architectures=data.class_architectures,
                                 **self.model.model_dump())
        if not data.known_train.all() and not config.has_architecture_head:
            raise ValueError(f"data.architecture_only_sources {self.data.architecture_only_sources} train only the "
                             f"architecture head, which needs model.w_arch > 0 and two architectures among the "
                             f"classes (w_arch={config.w_arch}, architectures {data.arch_names})")
        return config


# ----- checkpoints: folders of safetensors + JSON -----

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


def save_checkpoint(directory: str | Path, model: CausalDecoupler, optimizer: torch.optim.Optimizer,
                    epoch: int, history: list[dict[str, float]], recipe: dict[str, Any] | None = None) -> Path:
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
    optimizer_state = _optimizer_from_files(load_file(str(directory / OPTIMIZER_TENSORS)),
                                            json.loads((directory / OPTIMIZER_JSON).read_text()))
    epoch_info = json.loads((directory / EPOCH_NAME).read_text())
    return CheckpointState(model, optimizer_state, int(epoch_info["epoch"]), list(epoch_info["history"]))


# ----- the worker loop -----

class _Objective(nn.Module):
    """``forward(x, y)`` -> the loss terms, so that DistributedDataParallel sees (and syncs) every parameter
    the decoupler's loss touches; ``CausalDecoupler.loss`` alone would bypass the DDP wrapper."""

    def __init__(self, model: CausalDecoupler) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: Tensor, y: Tensor) -> dict[str, Tensor]:
        return self.model.loss(x, y)


def _epoch_seed(seed: int, epoch: int, rank: int = 0) -> int:
    return (seed * 1_000_003 + epoch * 7_919 + rank) % (2**63)


@torch.no_grad()
def _validate(model: CausalDecoupler, x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    logits = torch.from_numpy(model.predict_codes(x).logits)
    target = torch.from_numpy(y)
    return {"val_accuracy": float((logits.argmax(1) == target).float().mean()),
            "val_nll": float(F.cross_entropy(logits, target))}


def _rank_zero_mlflow(tracking_uri: str | None, run_id: str | None) -> Callable[[dict[str, float], int], None]:
    """A logger of per-epoch metrics into the driver's MLflow run (rank 0 only; a no-op without a run)."""
    if not tracking_uri or not run_id:
        return lambda metrics, step: None
    import mlflow
    from mlflow.entities import Metric

    client = mlflow.MlflowClient(tracking_uri=tracking_uri)

    def log_epoch(metrics: dict[str, float], step: int) -> None:
        now = mlflow.utils.time.get_current_time_millis()
        client.log_batch(run_id, metrics=[Metric(k, float(v), now, step) for k, v in metrics.items()])

    return log_epoch


def train_loop_per_worker(config: dict[str, Any]) -> None:
    """One Ray Train worker. ``config``: ``job`` (:class:`TrainJobConfig`), ``tracking_uri`` and ``run_id`` of
    the MLflow run (rank 0 logs into it), and ``on_epoch_end`` (``f(epoch, rank)`` called after each epoch's
    report, or None)."""
    import ray.train
    import ray.train.torch

    job: TrainJobConfig = config["job"]
    opts = job.train
    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    torch.set_num_threads(max(1, int(job.scaling.cpus_per_worker)))
    device = ray.train.torch.get_device()

    # 1. Data: every worker reads the extraction output itself (the driver ships no arrays), and keeps only the
    #    train and val rows.
    data = load_attribution_data(Storage(job.storage), job.data)
    expected = job.decoupler_config(data)
    x_train_np, y_train_np, x_val, y_val = data.x_train, data.y_train, data.x_val, data.y_val
    del data

    # 2. Model and optimizer: from the latest checkpoint when there is one, else fresh with the train statistics.
    checkpoint = ray.train.get_checkpoint()
    state: CheckpointState | None = None
    if checkpoint is not None:
        with checkpoint.as_directory() as directory:
            state = load_checkpoint(directory)
        if state.model.config != expected:
            raise ValueError(f"run {job.name!r} has checkpoints of another model or data ({state.model.config}); "
                             f"this job wants {expected}: choose a new name")
        model, start_epoch, history = state.model, state.epoch, state.history
        log.info("rank %d resumes %s after epoch %d", rank, job.name, start_epoch)
    else:
        torch.manual_seed(opts.seed)
        model, start_epoch, history = CausalDecoupler(expected), 0, []
        model.fit_input_statistics(torch.from_numpy(x_train_np), seed=opts.seed)
    model.train()
    objective = ray.train.torch.prepare_model(_Objective(model))  # to the device; DDP when world > 1
    optimizer = torch.optim.AdamW(model.parameters(), lr=opts.lr, weight_decay=opts.weight_decay)
    if state is not None:
        optimizer.load_state_dict(state.optimizer_state)
    log_epoch = _rank_zero_mlflow(config.get("tracking_uri"), config.get("run_id")) if rank == 0 else None
    on_epoch_end = config.get("on_epoch_end")

    x_train = torch.from_numpy(x_train_np).to(device)
    y_train = torch.from_numpy(y_train_np).to(device)
    per_worker = max(2, opts.batch_size // world)
    # Equal shards, so that every rank takes the same number of steps (DDP all-reduces once per step).
    usable = len(y_train) - len(y_train) % world
    for epoch in range(start_epoch, opts.epochs):
        # 3. Shuffle all rows with a seed shared by the ranks; rank r takes rows r, r + W, r + 2W, ... of that.
        order = torch.randperm(len(y_train), generator=torch.Generator().manual_seed(_epoch_seed(opts.seed, epoch)))
        mine = order[:usable][rank::world].to(device)
        torch.manual_seed(_epoch_seed(opts.seed, epoch, rank + 1))  # latent samples and swap pairings
        lr = epoch_lr(opts.lr, epoch, opts.epochs, opts.schedule)
        set_lr(optimizer, lr)  # after a resume too: the restored param groups hold the last epoch's rate
        # The shards have equal sizes, so every rank takes (and skips) the same steps.
        epoch_start = time.perf_counter()
        terms = train_epoch(objective, optimizer, x_train, y_train, mine, per_worker)
        # 4. Metrics: train terms are this rank's shard means; validation is on all val rows (same on all ranks).
        metrics = {"epoch": epoch + 1, "start_epoch": start_epoch, "epoch_seconds": time.perf_counter() - epoch_start,
                   "lr": optimizer.param_groups[0]["lr"],  # what the steps used
                   **{f"train_{k}": v for k, v in terms.items()},
                   **_validate(model, x_val, y_val)}
        history.append(metrics)
        model.train()
        # 5. Report: rank 0 attaches the checkpoint (uploaded to storage before report returns).
        if rank == 0:
            log_epoch(metrics, epoch + 1)
            with tempfile.TemporaryDirectory() as tmp:
                save_checkpoint(tmp, model, optimizer, epoch + 1, history, recipe=job.recipe())
                ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(tmp),
                                 checkpoint_dir_name=f"epoch_{epoch + 1:04d}")
        else:
            ray.train.report(metrics)
        if on_epoch_end is not None:
            on_epoch_end(epoch + 1, rank)


# ----- calibration and evaluation -----

@dataclass
class Calibration:
    """What turns a trained decoupler into open-set decisions, fitted on validation rows.

    ``temperature``/``threshold`` calibrate the logits path (known-ness = calibrated max probability);
    ``proto_temperature``/``proto_threshold`` the prototype path (known-ness = max cosine similarity to a
    prototype). Prototypes are the class means of the *train* codes, so the validation rows that calibrate their
    similarities are not the rows they were built from. ``proto_class_thresholds`` holds the own thresholds of
    enrolled sources (:mod:`causalprint.attribution.enrolment`); trained classes share ``proto_threshold``.
    """

    class_names: list[str]
    families: dict[str, str]
    temperature: float
    threshold: float
    proto_temperature: float
    proto_threshold: float
    prototypes: Prototypes
    target_tpr: float
    family_threshold: float
    proto_class_thresholds: dict[str, float] = field(default_factory=dict)

    def attributor(self, source: Literal["logits", "prototypes"] = "logits") -> OpenSetAttributor:
        """An :class:`OpenSetAttributor` set up with this calibration."""
        logits = source == "logits"
        attributor = OpenSetAttributor(self.class_names, source=source,
                                       prototypes=None if logits else self.prototypes,
                                       families=self.families, family_threshold=self.family_threshold,
                                       threshold=self.threshold if logits else self.proto_threshold,
                                       class_thresholds=None if logits else self.proto_class_thresholds)
        attributor.scaler_.temperature_ = self.temperature if logits else self.proto_temperature
        return attributor

    def to_json(self) -> dict[str, Any]:
        return {"format_version": 1, "class_names": self.class_names, "families": self.families,
                "logits": {"temperature": self.temperature, "threshold": self.threshold},
                "prototypes": {"temperature": self.proto_temperature, "threshold": self.proto_threshold,
                               "class_thresholds": self.proto_class_thresholds},
                "target_tpr": self.target_tpr, "family_threshold": self.family_threshold}

    def save(self, directory: str | Path) -> None:
        """``calibration.json`` + ``prototypes.safetensors`` + ``prototypes.json``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / CALIBRATION_NAME).write_text(json.dumps(self.to_json(), indent=2, sort_keys=True))
        self.prototypes.save(directory)

    @classmethod
    def load(cls, directory: str | Path) -> Calibration:
        directory = Path(directory)
        raw = json.loads((directory / CALIBRATION_NAME).read_text())
        return cls(class_names=list(raw["class_names"]), families=dict(raw["families"]),
                   temperature=float(raw["logits"]["temperature"]), threshold=float(raw["logits"]["threshold"]),
                   proto_temperature=float(raw["prototypes"]["temperature"]),
                   proto_threshold=float(raw["prototypes"]["threshold"]),
                   prototypes=Prototypes.load(directory), target_tpr=float(raw["target_tpr"]),
                   family_threshold=float(raw["family_threshold"]),
                   # Versions registered before enrolment existed hold no class thresholds.
                   proto_class_thresholds={k: float(v) for k, v in
                                           raw["prototypes"].get("class_thresholds", {}).items()})


def calibrate(model: CausalDecoupler, data: AttributionData, target_tpr: float = 0.95,
              family_threshold: float = 0.9) -> Calibration:
    """Prototypes from the train codes; temperatures and unknown thresholds from the validation rows."""
    names = data.class_names
    mine = np.flatnonzero(data.known_train)  # architecture-only rows have no class, hence no prototype
    # In slices: a boolean index would copy the whole known part of the train matrix (gigabytes on the bench).
    codes = np.concatenate([model.predict_codes(data.x_train[mine[i:i + 8192]]).fp for i in range(0, len(mine), 8192)])
    prototypes = Prototypes().fit(codes, [names[i] for i in data.y_train[mine]])
    val = model.predict_codes(data.x_val)
    families = {n: data.families[n] for n in names}  # known classes only: unknowns have no family to fall back on
    by_logits = OpenSetAttributor(names, families=families).fit(data.y_val, logits_val=val.logits,
                                                                target_tpr=target_tpr)
    by_proto = OpenSetAttributor(source="prototypes", prototypes=prototypes, families=families).fit(
        [names[i] for i in data.y_val], codes_val=val.fp, target_tpr=target_tpr)
    return Calibration(class_names=list(names), families=families,
                       temperature=by_logits.scaler_.temperature_, threshold=float(by_logits.threshold_),
                       proto_temperature=by_proto.scaler_.temperature_, proto_threshold=float(by_proto.threshold_),
                       prototypes=prototypes, target_tpr=target_tpr, family_threshold=family_threshold)


def evaluate(model: CausalDecoupler, calibration: Calibration, data: AttributionData) -> dict[str, float]:
    """Closed-set and open-set metrics on the test rows (``test_*``) and the validation accuracy of the model
    (``selected_val_accuracy``: the per-epoch ``val_accuracy`` is the training history's).

    ``test_accuracy`` is the argmax accuracy on known test rows; ``test_nll``/``test_ece`` of the calibrated
    probabilities; ``test_known_accept`` the share of known test rows that pass the threshold. With unknowns:
    ``test_auroc`` (known vs unknown by known-ness score), ``test_oscr`` and ``test_unknown_reject``. The
    ``proto_`` variants use the prototype path.
    """
    metrics = {"selected_val_accuracy": float((model.predict(data.x_val) == data.y_val).mean())
               if len(data.y_val) else 0.0}
    if not len(data.y_test):
        return metrics
    test = model.predict_codes(data.x_test)
    unknown = model.predict_codes(data.x_unknown) if len(data.x_unknown) else None
    names = calibration.class_names
    for prefix, source in (("test_", "logits"), ("test_proto_", "prototypes")):
        attributor = calibration.attributor(source)
        probs = attributor.probabilities(codes=test.fp, logits=test.logits)
        scores = attributor.scores(codes=test.fp, logits=test.logits)
        correct = probs.argmax(1) == data.y_test
        metrics[f"{prefix}accuracy"] = float(correct.mean())
        metrics[f"{prefix}known_accept"] = float(attributor.accepted(codes=test.fp, logits=test.logits).mean())
        if source == "logits":
            p_true = probs[np.arange(len(data.y_test)), data.y_test]
            metrics["test_nll"] = float(-np.log(np.maximum(p_true, 1e-12)).mean())
            metrics["test_ece"] = expected_calibration_error(probs, data.y_test)
        if unknown is not None:
            u_scores = attributor.scores(codes=unknown.fp, logits=unknown.logits)
            metrics[f"{prefix}auroc"] = auroc(scores, u_scores)
            metrics[f"{prefix}oscr"] = oscr(scores, correct, u_scores)
            metrics[f"{prefix}unknown_reject"] = float(
                (~attributor.accepted(codes=unknown.fp, logits=unknown.logits)).mean())
    log.info("evaluation over %d classes %s: %s", len(names), names,
             " ".join(f"{k}={v:.3f}" for k, v in metrics.items()))
    return metrics


# ----- the driver -----

def extraction_requirements(storage: Storage, features: str | list[str], columns: list[str]
                            ) -> dict[str, Any] | None:
    """How ``columns`` were extracted, from ``<features>/_extraction.json`` (of the first prefix, when training
    read several: the others are perturbed copies of the same extraction): the reference id, the image size and
    only the modes (with options) and spaces (with weights and options) that ``columns`` use; None if absent."""
    first = features if isinstance(features, str) else features[0]
    uri = f"{storage.resolve(first)}/_extraction.json"
    if not storage.exists(uri):
        return None
    spec = storage.read_json(uri)
    modes = {c.partition(".")[0] for c in columns}
    spaces = {c.partition(".")[2] for c in columns}
    return {"reference_id": spec["reference_id"], "image_size": spec["image_size"],
            "modes": {m: opts for m, opts in spec["modes"].items() if m in modes},
            "spaces": [s for s in spec["spaces"] if s["name"] in spaces]}


@dataclass
class TrainResult:
    """Everything registration needs: the chosen model (eval mode), its calibration, the data it saw, metrics."""

    name: str
    model: CausalDecoupler
    calibration: Calibration
    data: AttributionData
    metrics: dict[str, float]
    history: list[dict[str, float]]
    checkpoint_uri: str
    epochs_completed: int
    features: str | list[str]
    mlflow_run_id: str | None = None
    tracking_uri: str | None = None
    job: TrainJobConfig | None = field(default=None, repr=False)

    @property
    def requirements(self) -> dict[str, Any]:
        """What an input must match: the reference model and the concatenated feature columns; ``extraction``
        (see :func:`extraction_requirements`) tells a scan how to rebuild them, when the job's storage has it."""
        requirements = {"reference_id": self.data.reference_id, "columns": self.data.columns,
                        "column_dims": self.data.column_dims, "input_dim": self.data.input_dim,
                        "features": self.features}
        if self.job is not None:
            extraction = extraction_requirements(Storage(self.job.storage), self.features, self.data.columns)
            if extraction is not None:
                requirements["extraction"] = extraction
        return requirements


def run_root(job: TrainJobConfig, storage: Storage) -> str:
    """The storage URI of the run's Ray Train folder (``<root>/<checkpoint_prefix>/<name>``)."""
    return storage.uri(job.scaling.checkpoint_prefix, job.name)


def stored_checkpoints(job: TrainJobConfig, storage: Storage) -> dict[int, str]:
    """Epoch -> URI of every complete checkpoint folder of the run in storage (a folder that a killed upload
    left half-written is not complete, and is not listed)."""
    root = run_root(job, storage)
    files: dict[str, set[str]] = {}
    for info in storage.list_files(root):
        folder, _, rest = info.uri[len(root):].strip("/").partition("/")
        if folder.startswith("epoch_") and rest:
            files.setdefault(folder, set()).add(rest)
    return {int(folder.removeprefix("epoch_")): f"{root}/{folder}" for folder, names in files.items()
            if set(CHECKPOINT_FILES) <= names}


def _without_class_lists(recipe: dict[str, Any]) -> dict[str, Any]:
    if "data" not in recipe:
        return recipe
    lists = ("class_sources", "excluded_sources")
    return {**recipe, "data": {k: v for k, v in recipe["data"].items() if k not in lists}}


def _check_existing_run(job: TrainJobConfig, storage: Storage, data: AttributionData) -> int:
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
        changed = {k: (getattr(found, k), getattr(expected, k)) for k in DecouplerConfig.model_fields
                   if getattr(found, k) != getattr(expected, k)}
        raise ValueError(f"run {job.name!r} already has checkpoints of another model or data under "
                         f"{run_root(job, storage)} (changed, as (checkpoint, job): {changed}): choose a new name")
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
        changed.update({f"data.{k}": (have.get(k), want.get(k)) for k in sorted({*have, *want})
                        if have.get(k) != want.get(k)})
    if changed:
        legacy = "" if recorded else (" (these checkpoints predate recorded recipes: train.schedule=constant "
                                      "resumes them)")
        raise ValueError(f"run {job.name!r} already has checkpoints trained with another recipe under "
                         f"{run_root(job, storage)} (changed, as (checkpoint, job): {changed}){legacy}: choose a "
                         f"new name")
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
    best = max(stored, key=lambda e: (by_epoch[e].get(SELECT_METRIC, -np.inf), -by_epoch[e].get("val_nll", np.inf),
                                      e))
    return best, stored[best], history


def _flat_params(job: TrainJobConfig, data: AttributionData) -> dict[str, str]:
    params = {"name": job.name, "features": job.data.features, "columns": ",".join(job.data.columns),
              "held_out_sources": ",".join(job.data.held_out_sources), "reference_id": data.reference_id,
              "class_names": ",".join(data.class_names), **{f"data.{k}": v for k, v in data.summary().items()}}
    for section in ("model", "train", "scaling"):
        params.update({f"{section}.{k}": v for k, v in getattr(job, section).model_dump().items()})
    return {k: str(v)[:500] for k, v in params.items()}


def _open_mlflow_run(job: TrainJobConfig, storage: Storage, data: AttributionData) -> tuple[str, str]:
    """The MLflow run of this training name: reopened if one exists (a rerun resumes), else created."""
    import mlflow

    from causalprint.tracking.mlflow_setup import configure_mlflow

    experiment_id = configure_mlflow(job.mlflow, storage)
    client = mlflow.MlflowClient()
    named = client.search_runs([experiment_id], filter_string=f"tags.`{RUN_TAG}` = '{job.name}'",
                               order_by=["attributes.start_time DESC"], max_results=1000)
    # The runs of the versions registered from it carry the name too (and a kind); they are newer, not it.
    found = [run for run in named if KIND_TAG not in run.data.tags]
    if found:
        run_id = found[0].info.run_id
        client.update_run(run_id, status="RUNNING")
        log.info("reopened MLflow run %s of training %s", run_id, job.name)
    else:
        run_id = client.create_run(experiment_id, run_name=f"train-{job.name}", tags={RUN_TAG: job.name}).info.run_id
        from mlflow.entities import Param

        client.log_batch(run_id, params=[Param(k, v) for k, v in _flat_params(job, data).items()])
    return mlflow.get_tracking_uri(), run_id


def _fit(job: TrainJobConfig, storage: Storage, tracking_uri: str, run_id: str,
         on_epoch_end: Callable[[int, int], None] | None) -> None:
    from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    from causalprint.runtime.ray_local import ensure_ray

    ensure_ray(job.ray)
    prefix = storage.uri(job.scaling.checkpoint_prefix)
    run_config = RunConfig(
        name=job.name,  # the same name and storage path: Ray Train restores the run's checkpoint state
        storage_path=storage.fs_path(prefix) if storage.is_s3 else prefix,
        storage_filesystem=storage.filesystem if storage.is_s3 else None,
        failure_config=FailureConfig(max_failures=job.scaling.max_failures),
        checkpoint_config=CheckpointConfig(num_to_keep=job.scaling.keep_checkpoints,
                                           checkpoint_score_attribute=SELECT_METRIC, checkpoint_score_order="max"),
    )
    TorchTrainer(
        train_loop_per_worker,
        train_loop_config={"job": job, "tracking_uri": tracking_uri, "run_id": run_id, "on_epoch_end": on_epoch_end},
        scaling_config=ScalingConfig(num_workers=job.scaling.num_workers, use_gpu=job.scaling.use_gpu,
                                     resources_per_worker={"CPU": job.scaling.cpus_per_worker}),
        run_config=run_config,
    ).fit()


def run_training(job: TrainJobConfig, *,
                 on_epoch_end: Callable[[int, int], None] | None = None) -> TrainResult:
    """Train on Ray Train (resuming the run ``job.name`` if it has checkpoints), calibrate, evaluate, log.

    A run whose checkpoints already reach ``train.epochs`` is not started again: it is only calibrated and
    evaluated. ``on_epoch_end(epoch, rank)`` runs inside each worker after every epoch's report (telemetry,
    fault tests); it must be picklable.
    """
    import mlflow

    from causalprint.storage.folders import download_folder

    if not job.storage.is_s3:  # workers run in Ray's session folder: a relative root must not follow them there
        job = job.model_copy(update={"storage": job.storage.model_copy(
            update={"root": str(Path(job.storage.root).resolve())})})
    storage = Storage(job.storage)
    data = load_attribution_data(storage, job.data)  # fails fast, before any worker starts
    done = _check_existing_run(job, storage, data)
    log.info("training %s on %s (%s): %s", job.name, job.data.features,
             f"{done} epochs already done" if done else "new run", data.summary())
    tracking_uri, run_id = _open_mlflow_run(job, storage, data)
    client = mlflow.MlflowClient(tracking_uri=tracking_uri)
    try:  # whatever fails after the run is opened marks it FAILED, not left RUNNING
        if done < job.train.epochs:
            del data  # the workers read their own copy; holding this one too doubles the node's memory
            _fit(job, storage, tracking_uri, run_id, on_epoch_end)
            data = load_attribution_data(storage, job.data)
        epoch, uri, history = select_checkpoint(job, storage)
        with tempfile.TemporaryDirectory() as tmp:
            model = load_checkpoint(download_folder(storage, uri, tmp)).model.eval()
        calibration = calibrate(model, data, job.train.target_tpr, job.train.family_threshold)
        metrics = {**evaluate(model, calibration, data), "chosen_epoch": float(epoch),
                   "epochs_completed": float(len(history))}
        client.log_batch(run_id, metrics=[_metric(k, v) for k, v in metrics.items()])
    except Exception:
        client.set_terminated(run_id, status="FAILED")
        raise
    client.set_terminated(run_id, status="FINISHED")
    log.info("training %s: epoch %d chosen (%s), %s", job.name, epoch, job.train.select, metrics)
    return TrainResult(name=job.name, model=model, calibration=calibration, data=data, metrics=metrics,
                       history=history, checkpoint_uri=uri, epochs_completed=len(history),
                       features=job.data.features, mlflow_run_id=run_id, tracking_uri=tracking_uri, job=job)


def _metric(key: str, value: float) -> Any:
    import mlflow
    from mlflow.entities import Metric

    return Metric(key, float(value), mlflow.utils.time.get_current_time_millis(), 0)
