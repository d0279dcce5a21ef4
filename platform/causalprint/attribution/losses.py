"""Loss terms of the causal decoupler: HSIC independence, the Gaussian KL and a gradient-reversal layer."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["gaussian_gram", "grad_reverse", "hsic", "kl_standard_normal", "median_bandwidth", "one_hot"]


def _as_matrix(x: Tensor) -> Tensor:
    return x.reshape(-1, 1) if x.ndim == 1 else x.reshape(x.shape[0], -1)


def _squared_distances(x: Tensor) -> Tensor:
    """``[N, N]`` squared Euclidean distances by ``|a|^2 + |b|^2 - 2ab`` (no ``[N, N, D]`` intermediate), with
    rounding below zero clipped and an exact zero diagonal."""
    norms = x.pow(2).sum(-1)
    sq = (norms.unsqueeze(1) + norms.unsqueeze(0) - 2.0 * x @ x.T).clamp_min(0.0)
    return sq * (1.0 - torch.eye(x.shape[0], dtype=x.dtype, device=x.device))


def _median_from_squared(sq: Tensor) -> Tensor:
    sq = sq.detach()
    upper = sq[torch.triu(torch.ones_like(sq, dtype=torch.bool), diagonal=1)]
    positive = upper[upper > 1e-12]
    if positive.numel() == 0:  # every row identical: any width gives a constant kernel
        return torch.ones((), dtype=sq.dtype, device=sq.device)
    return positive.median().sqrt()


def median_bandwidth(x: Tensor) -> Tensor:
    """Median heuristic: the median of the non-zero pairwise distances of the rows of ``x`` (``[N, D]``).

    Zero distances are left out so that a one-hot label with a dominant class still gets a usable width; the
    result is detached, because the bandwidth is a choice of kernel, not something to optimise through.
    """
    return _median_from_squared(_squared_distances(_as_matrix(x).detach()))


def gaussian_gram(x: Tensor, sigma: float | Tensor | None = None) -> Tensor:
    """``K_ij = exp(-||x_i - x_j||^2 / (2 sigma^2))`` for ``x`` ``[N, D]`` (or ``[N]``); ``[N, N]``."""
    sq = _squared_distances(_as_matrix(x))
    width = _median_from_squared(sq) if sigma is None else torch.as_tensor(sigma, dtype=sq.dtype, device=sq.device)
    return torch.exp(-sq / (2.0 * width**2))


def hsic(x: Tensor, y: Tensor, sigma: float | None = None) -> Tensor:
    """Biased HSIC estimate with Gaussian kernels (Gretton et al. 2005, eq. 4): ``tr(K H L H) / (N-1)^2``.

    ``x`` ``[N, Dx]`` and ``y`` ``[N, Dy]`` are paired samples (1-D inputs are read as ``[N, 1]``). ``sigma`` is
    the kernel width of both; ``None`` takes the median heuristic for each input separately. The estimate is
    >= 0, close to 0 (O(1/N)) for independent samples and grows with dependence. Differentiable in both inputs.
    """
    x, y = _as_matrix(x), _as_matrix(y)
    n = x.shape[0]
    if y.shape[0] != n:
        raise ValueError(f"hsic needs paired samples; got {n} rows of x and {y.shape[0]} of y")
    if n < 2:
        raise ValueError(f"hsic needs at least 2 samples, got {n}")
    k = gaussian_gram(x, sigma)
    l_ = gaussian_gram(y.to(x.dtype), sigma)
    # H K H is K with row and column means removed; tr(HKH L) = <HKH, L> since both are symmetric.
    kc = k - k.mean(0, keepdim=True) - k.mean(1, keepdim=True) + k.mean()
    return (kc * l_).sum() / (n - 1) ** 2


def kl_standard_normal(mu: Tensor, logvar: Tensor) -> Tensor:
    """``KL(N(mu, exp(logvar)) || N(0, I))`` summed over code dimensions, averaged over the batch."""
    return (-0.5 * (1.0 + logvar - mu.pow(2) - logvar.exp())).sum(-1).mean()


class _GradReverse(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, scale: float) -> Tensor:
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:
        return -ctx.scale * grad, None


def grad_reverse(x: Tensor, scale: float = 1.0) -> Tensor:
    """Identity forward, gradient times ``-scale`` backward (Ganin & Lempitsky 2015): the layers before it
    learn to defeat the head after it, while the head itself learns normally."""
    return _GradReverse.apply(x, scale)


def one_hot(y: Tensor, num_classes: int, dtype: torch.dtype = torch.float32) -> Tensor:
    """``[N]`` integer labels -> ``[N, num_classes]`` one-hot rows."""
    return F.one_hot(y.long(), num_classes).to(dtype)
