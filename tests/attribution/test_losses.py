"""HSIC, the Gaussian KL and gradient reversal against independent formulas."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from causalprint.attribution.losses import gaussian_gram, grad_reverse, hsic, kl_standard_normal, median_bandwidth


def _hsic_numpy(x: np.ndarray, y: np.ndarray, sx: float, sy: float) -> float:
    """Gretton et al. 2005, eq. 4, written out with explicit loops and the centring matrix H."""
    n = len(x)
    k = np.array([[np.exp(-np.sum((x[i] - x[j]) ** 2) / (2 * sx**2)) for j in range(n)] for i in range(n)])
    l_ = np.array([[np.exp(-np.sum((y[i] - y[j]) ** 2) / (2 * sy**2)) for j in range(n)] for i in range(n)])
    h = np.eye(n) - np.ones((n, n)) / n
    return float(np.trace(k @ h @ l_ @ h) / (n - 1) ** 2)


def _median_distance(x: np.ndarray) -> float:
    d = [np.linalg.norm(x[i] - x[j]) for i in range(len(x)) for j in range(i + 1, len(x))]
    return float(np.median([v for v in d if v > 1e-12]))


def test_hsic_matches_numpy_formula() -> None:
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(7, 3)), rng.normal(size=(7, 2))
    y[:, 0] += x[:, 0]
    got = hsic(torch.from_numpy(x), torch.from_numpy(y), sigma=0.8).item()
    assert got == pytest.approx(_hsic_numpy(x, y, 0.8, 0.8), rel=1e-10)
    # Median heuristic: each input gets its own median pairwise distance.
    got = hsic(torch.from_numpy(x), torch.from_numpy(y)).item()
    assert got == pytest.approx(_hsic_numpy(x, y, _median_distance(x), _median_distance(y)), rel=1e-10)
    assert median_bandwidth(torch.from_numpy(x)).item() == pytest.approx(_median_distance(x))


def test_hsic_near_zero_when_independent_and_large_when_dependent() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(200, 3, generator=g, dtype=torch.float64)
    independent = hsic(x, torch.randn(200, 2, generator=g, dtype=torch.float64)).item()
    noisy_copy = hsic(x, x[:, :2] + 0.1 * torch.randn(200, 2, generator=g, dtype=torch.float64)).item()
    nonlinear = hsic(x[:, 0], x[:, 0] ** 2).item()  # uncorrelated, yet dependent
    assert 0 <= independent < 2e-3
    assert noisy_copy > 10 * independent and nonlinear > 10 * independent


def test_hsic_with_one_hot_labels_and_gradient() -> None:
    g = torch.Generator().manual_seed(1)
    y = torch.arange(120) % 3
    onehot = torch.nn.functional.one_hot(y, 3).double()
    leaky = (y.double().unsqueeze(1) + 0.1 * torch.randn(120, 2, generator=g, dtype=torch.float64)).requires_grad_()
    clean = torch.randn(120, 2, generator=g, dtype=torch.float64)
    dep = hsic(leaky, onehot)
    assert dep.item() > 10 * hsic(clean, onehot).item()
    dep.backward()
    assert leaky.grad is not None and torch.isfinite(leaky.grad).all() and leaky.grad.abs().sum() > 0


def test_gaussian_gram_and_errors() -> None:
    k = gaussian_gram(torch.tensor([[0.0], [1.0]]), sigma=1.0)
    assert torch.allclose(k, torch.tensor([[1.0, np.exp(-0.5)], [np.exp(-0.5), 1.0]], dtype=torch.float32))
    with pytest.raises(ValueError, match="paired"):
        hsic(torch.zeros(4, 2), torch.zeros(5, 2))
    # Constant input: the kernel is constant, so nothing can be dependent on it.
    assert hsic(torch.ones(10, 2), torch.randn(10, 2)).item() == pytest.approx(0.0, abs=1e-7)


def test_kl_standard_normal_matches_torch_distributions() -> None:
    g = torch.Generator().manual_seed(2)
    mu, logvar = torch.randn(5, 4, generator=g), torch.randn(5, 4, generator=g)
    ref = (
        torch.distributions.kl_divergence(
            torch.distributions.Normal(mu, (0.5 * logvar).exp()), torch.distributions.Normal(0.0, 1.0)
        )
        .sum(-1)
        .mean()
    )
    assert kl_standard_normal(mu, logvar).item() == pytest.approx(ref.item(), rel=1e-5)
    assert kl_standard_normal(torch.zeros(3, 2), torch.zeros(3, 2)).item() == 0.0


def test_grad_reverse_flips_and_scales_the_gradient() -> None:
    x = torch.tensor([1.0, -2.0], requires_grad=True)
    out = grad_reverse(x, 0.5)
    assert torch.equal(out, x.detach())
    (out * torch.tensor([3.0, 4.0])).sum().backward()
    assert torch.equal(x.grad, torch.tensor([-1.5, -2.0]))
