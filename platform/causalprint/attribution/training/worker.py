"""One Ray Train worker: its shard of every epoch, validation, and rank 0's checkpoint and MLflow log."""

from __future__ import annotations

import logging
import tempfile
import time
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from causalprint.attribution.dataset import load_attribution_data
from causalprint.attribution.model import CausalDecoupler, train_epoch
from causalprint.attribution.schedule import epoch_lr, set_lr
from causalprint.attribution.training.checkpoints import CheckpointState, load_checkpoint, save_checkpoint
from causalprint.attribution.training.config import TrainJobConfig
from causalprint.attribution.training.mlflow_run import epoch_logger
from causalprint.storage import Storage

log = logging.getLogger(__name__)

__all__ = ["train_loop_per_worker"]


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
    return {
        "val_accuracy": float((logits.argmax(1) == target).float().mean()),
        "val_nll": float(F.cross_entropy(logits, target)),
    }


def train_loop_per_worker(config: dict[str, Any]) -> None:
    """One Ray Train worker. ``config``: ``job`` (:class:`TrainJobConfig`), ``tracking_uri`` and ``run_id`` of
    the MLflow run (rank 0 logs into it), ``on_epoch_end`` (``f(epoch, rank)`` called after each epoch's
    report, or None) and ``on_shard`` (``f(epoch, rank, rows)`` called before each epoch's steps with the
    positions in ``x_train`` of this rank's shard, or None)."""
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
            raise ValueError(
                f"run {job.name!r} has checkpoints of another model or data ({state.model.config}); "
                f"this job wants {expected}: choose a new name"
            )
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
    log_epoch = epoch_logger(config.get("tracking_uri"), config.get("run_id")) if rank == 0 else None
    on_epoch_end = config.get("on_epoch_end")
    on_shard = config.get("on_shard")

    x_train = torch.from_numpy(x_train_np).to(device)
    y_train = torch.from_numpy(y_train_np).to(device)
    per_worker = max(2, opts.batch_size // world)
    # Equal shards, so that every rank takes the same number of steps (DDP all-reduces once per step).
    usable = len(y_train) - len(y_train) % world
    for epoch in range(start_epoch, opts.epochs):
        # 3. Shuffle all rows with a seed shared by the ranks; rank r takes rows r, r + W, r + 2W, ... of that.
        order = torch.randperm(len(y_train), generator=torch.Generator().manual_seed(_epoch_seed(opts.seed, epoch)))
        mine = order[:usable][rank::world].to(device)
        if on_shard is not None:
            on_shard(epoch + 1, rank, mine.cpu().numpy())
        torch.manual_seed(_epoch_seed(opts.seed, epoch, rank + 1))  # latent samples and swap pairings
        lr = epoch_lr(opts.lr, epoch, opts.epochs, opts.schedule)
        set_lr(optimizer, lr)  # after a resume too: the restored param groups hold the last epoch's rate
        # The shards have equal sizes, so every rank takes (and skips) the same steps.
        epoch_start = time.perf_counter()
        terms = train_epoch(objective, optimizer, x_train, y_train, mine, per_worker)
        # 4. Metrics: train terms are this rank's shard means; validation is on all val rows (same on all ranks).
        metrics = {
            "epoch": epoch + 1,
            "start_epoch": start_epoch,
            "epoch_seconds": time.perf_counter() - epoch_start,
            "lr": optimizer.param_groups[0]["lr"],  # what the steps used
            **{f"train_{k}": v for k, v in terms.items()},
            **_validate(model, x_val, y_val),
        }
        history.append(metrics)
        model.train()
        # 5. Report: rank 0 attaches the checkpoint (uploaded to storage before report returns).
        if rank == 0:
            assert log_epoch is not None  # made on rank 0 above
            log_epoch(metrics, epoch + 1)
            with tempfile.TemporaryDirectory() as tmp:
                save_checkpoint(tmp, model, optimizer, epoch + 1, history, recipe=job.recipe())
                ray.train.report(
                    metrics,
                    checkpoint=ray.train.Checkpoint.from_directory(tmp),
                    checkpoint_dir_name=f"epoch_{epoch + 1:04d}",
                )
        else:
            ray.train.report(metrics)
        if on_epoch_end is not None:
            on_epoch_end(epoch + 1, rank)
