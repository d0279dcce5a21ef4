"""The residual-mode contract, looped over the registry, plus each mode's own promise."""

from __future__ import annotations

import pytest
import torch

from causalprint.residual.registry import RESIDUAL_MODES, create_mode


def _images(n: int, size: int = 16, seed: int = 0) -> torch.Tensor:
    return torch.rand((n, 3, size, size), generator=torch.Generator().manual_seed(seed)) * 2 - 1


@pytest.mark.parametrize("name", RESIDUAL_MODES.names())
def test_contract(tiny_reference, name: str) -> None:
    mode = create_mode(name, tiny_reference, **({"steps": 2} if name == "dire" else {}))
    x, seeds = _images(6), torch.arange(6)
    r = mode(x, seeds)
    assert r.shape == x.shape and r.dtype == torch.float32 and torch.isfinite(r).all()
    # Deterministic, and independent of the batch an image travels in.
    assert torch.equal(r, mode(x, seeds))
    halves = torch.cat([mode(x[:3], seeds[:3]), mode(x[3:], seeds[3:])])
    # Batched convolutions may sum in another order; an untrained DIRE amplifies that, so compare relatively.
    assert (r - halves).abs().max() <= 1e-5 * (1 + r.abs().max())


def test_image_mode_is_the_image(tiny_reference) -> None:
    x = _images(2)
    assert torch.equal(create_mode("image", tiny_reference)(x, torch.arange(2)), x)


def test_one_step_noise_follows_the_seed(tiny_reference) -> None:
    mode = create_mode("one_step", tiny_reference, t=300)
    x = _images(1).repeat(2, 1, 1, 1)
    r = mode(x, torch.tensor([1, 2]))
    assert not torch.equal(r[0], r[1])


@pytest.mark.parametrize("name", ["one_step", "latent", "image"])
def test_differentiable_modes_pass_gradients(tiny_reference, name: str) -> None:
    x = _images(2).requires_grad_(True)
    create_mode(name, tiny_reference)(x, torch.arange(2)).square().sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_cost_model(tiny_reference) -> None:
    assert create_mode("dire", tiny_reference, steps=20).denoiser_passes == 40
    assert create_mode("one_step", tiny_reference).denoiser_passes == 1


def test_dire_with_exact_denoiser_reconstructs_the_image(tiny_reference) -> None:
    """With eps_theta replaced by the true noise direction, DDIM inversion + reconstruction is the identity."""
    mode = create_mode("dire", tiny_reference, steps=5, t_end=500)
    x0 = _images(2)
    ab = tiny_reference.scheduler.alphas_cumprod

    class Oracle(torch.nn.Module):
        config = tiny_reference.unet.config

        # For x_t = sqrt(ab) x0 + sqrt(1-ab) eps, the exact eps is (x_t - sqrt(ab) x0) / sqrt(1-ab).
        def forward(self, x, t):
            a = ab[int(t[0])]
            return type("Out", (), {"sample": (x - a.sqrt() * x0) / (1 - a).sqrt()})()

    tiny_reference.unet = Oracle()
    assert torch.allclose(mode(x0, torch.arange(2)), torch.zeros_like(x0), atol=1e-4)


def test_wrong_size_is_a_clear_error(tiny_reference) -> None:
    with pytest.raises(ValueError, match="intake.size"):
        create_mode("one_step", tiny_reference)(_images(1, size=32), torch.arange(1))


def test_latent_mode_needs_a_vae(tiny_reference) -> None:
    tiny_reference.vae = None
    with pytest.raises(ValueError, match="no vae"):
        create_mode("latent", tiny_reference)(_images(1), torch.arange(1))
