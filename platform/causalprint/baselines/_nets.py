"""Torch pieces the baselines share: a small CNN trunk, a standardised linear probe, and one training loop."""

from __future__ import annotations

import logging
import math
import time
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.optim.swa_utils import update_bn

log = logging.getLogger(__name__)

__all__ = ["CNNClassifier", "ConvTrunk", "LinearProbe", "fit_classifier"]


def _conv_bn_relu(c_in: int, c_out: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)
    )


class ConvTrunk(nn.Module):
    """``[B, 3, S, S]`` -> ``[B, 4 * width]``: four 3x3 conv-BN-ReLU blocks, then global average pooling.

    The first block keeps full resolution (fingerprints are mostly high-frequency, so nothing is pooled before
    a learned filter has seen every pixel); the other three halve it with stride 2 while doubling the channels
    (``width``, ``width``, ``2 width``, ``4 width``). BatchNorm makes the input scale irrelevant, so the same
    trunk reads images in [-1, 1] and residuals of ~1e-2.
    """

    def __init__(self, width: int) -> None:
        super().__init__()
        self.out_dim = 4 * width
        self.blocks = nn.Sequential(
            _conv_bn_relu(3, width, 1),
            _conv_bn_relu(width, width, 2),
            _conv_bn_relu(width, 2 * width, 2),
            _conv_bn_relu(2 * width, 4 * width, 2),
        )

    def forward(self, images: Tensor) -> Tensor:
        return self.blocks(images).mean(dim=(2, 3))


class CNNClassifier(nn.Module):
    """Flat image-shaped rows ``[B, 3*S*S]`` -> ``[B, 3, S, S]`` -> optional ``abs`` -> :class:`ConvTrunk` ->
    linear head -> logits ``[B, K]``."""

    def __init__(
        self, image_side: int, width: int, num_classes: int, transform: Literal["identity", "abs"] = "identity"
    ) -> None:
        super().__init__()
        self.image_side, self.transform = image_side, transform
        self.trunk = ConvTrunk(width)
        self.head = nn.Linear(self.trunk.out_dim, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        images = x.reshape(x.shape[0], 3, self.image_side, self.image_side)
        if self.transform == "abs":
            images = images.abs()
        return self.head(self.trunk(images))


class LinearProbe(nn.Module):
    """Multinomial logistic regression on standardised features: ``logits = W (x - mean) / std + b``.

    ``mean``/``std`` are buffers set from the training rows by :meth:`set_scaler`; ``W`` and ``b`` start at zero
    (the loss is convex, so the start only sets the path, not the optimum).
    """

    mean: Tensor
    std: Tensor

    def __init__(self, dim: int, num_classes: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))
        self.linear = nn.Linear(dim, num_classes)
        nn.init.zeros_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)

    @torch.no_grad()
    def set_scaler(self, x: Tensor) -> None:
        """Per-feature mean and std of the training rows ``[N, D]``; a floor keeps constant features at 0."""
        x = x.double()
        self.mean.copy_(x.mean(0).float())
        self.std.copy_(x.std(0, unbiased=False).clamp_min(1e-6).float())

    def forward(self, x: Tensor) -> Tensor:
        return self.linear((x - self.mean) / self.std)


def fit_classifier(
    module: nn.Module,
    x: Tensor,
    y: Tensor,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    weight_decay: float,
    seed: int,
    label: str,
) -> list[dict[str, float]]:
    """Minimise cross-entropy of ``module(x)`` against ``y`` with Adam; returns per-epoch statistics.

    1. Minibatch order comes from a generator seeded with ``seed`` (the caller seeds the initial weights).
    2. Weight decay is Adam's coupled L2 penalty (``grad += weight_decay * w``) on weight matrices and kernels
       only; biases and norm parameters are not decayed.
    3. The learning rate follows a cosine from ``lr`` to 0 over all steps.
    4. ``x`` ``[N, D]`` and ``y`` ``[N]`` are copied to the module's device once; a trailing batch of one row is
       skipped (BatchNorm cannot normalise it).
    5. BatchNorm running statistics, if any, are recomputed at the end as exact averages over the training rows
       under the final weights: the running averages lag behind weights that still moved in the last steps,
       which in short training runs made eval-mode predictions collapse to one class.
    """
    device = next(module.parameters()).device
    x, y = x.to(device), y.to(device)
    n = x.shape[0]
    decay = [p for p in module.parameters() if p.ndim >= 2]
    no_decay = [p for p in module.parameters() if p.ndim < 2]
    opt = torch.optim.Adam(
        [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}], lr=lr
    )
    steps_per_epoch = max(1, math.ceil(n / batch_size))
    total = max(1, epochs * steps_per_epoch)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda step: 0.5 * (1.0 + math.cos(math.pi * min(step, total) / total))
    )
    gen = torch.Generator().manual_seed(seed)
    history: list[dict[str, float]] = []
    module.train()
    for epoch in range(epochs):
        start = time.perf_counter()
        order = torch.randperm(n, generator=gen).to(device)
        # Sums stay on the device: reading them back every step would stall a GPU.
        loss_sum, correct, seen = torch.zeros((), device=device), torch.zeros((), device=device), 0
        for i in range(0, n, batch_size):
            idx = order[i : i + batch_size]
            if idx.numel() < 2 <= n:
                continue
            logits = module(x[idx])
            loss = F.cross_entropy(logits, y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            loss_sum += loss.detach() * idx.numel()
            correct += (logits.detach().argmax(-1) == y[idx]).sum()
            seen += idx.numel()
        loss_mean, accuracy = float(loss_sum) / max(seen, 1), float(correct) / max(seen, 1)
        seconds = time.perf_counter() - start
        stats = {
            "epoch": float(epoch + 1),
            "loss": loss_mean,
            "train_accuracy": accuracy,
            "seconds": seconds,
            "rows_per_second": seen / max(seconds, 1e-9),
        }
        history.append(stats)
        log.info(
            "%s epoch %d/%d: loss %.4f, train accuracy %.3f, %.0f rows/s (%.1f s)",
            label,
            epoch + 1,
            epochs,
            stats["loss"],
            stats["train_accuracy"],
            stats["rows_per_second"],
            seconds,
        )
    if any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in module.modules()):
        with torch.no_grad():
            update_bn((x[i : i + batch_size] for i in range(0, n, batch_size) if n - i >= 2 or n < 2), module)
    module.eval()
    return history
