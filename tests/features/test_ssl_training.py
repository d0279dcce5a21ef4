"""SimCLR training of the SSL encoder: the loss falls on structured data, and the folder round trip is exact."""

from __future__ import annotations

import math
from pathlib import Path

import torch

from causalprint.features.ssl_training import (
    SSLEncoderConfig,
    SSLTrainConfig,
    augment,
    load_ssl_encoder,
    nt_xent_loss,
    save_ssl_encoder,
    train_ssl_encoder,
)

TINY = SSLTrainConfig(
    encoder=SSLEncoderConfig(width=8, depth=2, embed_dim=16), proj_dim=16, batch_size=32, lr=3e-3, steps=30
)


def _structured(n: int = 64, s: int = 16) -> torch.Tensor:
    """Residual-like maps from 8 sources, each a distinct periodic pattern (a stand-in fingerprint) plus noise."""
    gen = torch.Generator().manual_seed(0)
    coords = torch.arange(s, dtype=torch.float32)
    patterns = []
    for k in range(8):
        fy, fx = 1 + k % 4, 1 + k // 4 * 3
        wave = torch.cos(2 * math.pi * (fy * coords[:, None] + fx * coords[None, :]) / s)
        patterns.append(wave * torch.tensor([1.0, -0.5, 0.25 * k]).view(3, 1, 1))
    labels = torch.arange(n) % 8
    return 0.1 * torch.stack([patterns[i] for i in labels]) + 0.02 * torch.randn(n, 3, s, s, generator=gen)


def test_nt_xent_is_low_for_matching_views_and_log_2n_minus_1_for_equal_ones() -> None:
    z = torch.eye(8)
    assert nt_xent_loss(z, z, 0.1) < 1e-3
    ones = torch.ones(4, 3)
    torch.testing.assert_close(nt_xent_loss(ones, ones, 0.5), torch.tensor(math.log(7.0)))


def test_augment_keeps_pixel_values_without_noise() -> None:
    x = torch.randn(16, 3, 8, 8)
    config = TINY.model_copy(update={"noise_std": 0.0, "max_shift": 0})
    view = augment(x, config, torch.Generator().manual_seed(0))
    # Flips and rotations only permute pixels: the sorted values of each image are unchanged.
    torch.testing.assert_close(view.flatten(1).sort(1).values, x.flatten(1).sort(1).values)


def test_training_reduces_the_loss() -> None:
    losses: list[float] = []
    encoder = train_ssl_encoder(_structured(), TINY, on_step=lambda step, loss: losses.append(loss))
    assert len(losses) == TINY.steps
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert last < 0.85 * first, (first, last)
    assert not encoder.training and encoder(torch.zeros(2, 3, 16, 16)).shape == (2, 16)
    assert encoder.config.input_scale != 1.0  # set from the data


def test_save_load_round_trip_is_bit_identical(tmp_path: Path) -> None:
    encoder = train_ssl_encoder(_structured(16), TINY.model_copy(update={"steps": 2, "batch_size": 8}))
    loaded = load_ssl_encoder(save_ssl_encoder(encoder, tmp_path / "enc"))
    assert loaded.config == encoder.config
    for (name, a), (_, b) in zip(encoder.state_dict().items(), loaded.state_dict().items(), strict=True):
        assert torch.equal(a, b), name
    x = _structured(4)
    with torch.no_grad():
        assert torch.equal(encoder(x), loaded(x))
