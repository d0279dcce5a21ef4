"""One contract test over every registered feature space, then known answers per space."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.fft
import torch

from causalprint.features.registry import FEATURE_SPACES, create_space

S = 32  # the tiny ViT/CLIP checkpoints below take 32 x 32 inputs


def _tiny_ssl(tmp: Path) -> dict[str, Any]:
    from causalprint.features.ssl_training import SSLEncoder, SSLEncoderConfig, save_ssl_encoder

    torch.manual_seed(0)
    encoder = SSLEncoder(SSLEncoderConfig(width=8, depth=2, embed_dim=16, input_scale=0.1))
    return {"path": str(save_ssl_encoder(encoder, tmp / "ssl-tiny"))}


def _tiny_vit(tmp: Path) -> dict[str, Any]:
    from transformers import ViTConfig, ViTModel

    torch.manual_seed(0)
    config = ViTConfig(
        image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64
    )
    ViTModel(config).save_pretrained(tmp / "vit-tiny", safe_serialization=True)
    return {"path": str(tmp / "vit-tiny")}


def _tiny_clip(tmp: Path) -> dict[str, Any]:
    """A full CLIP checkpoint (text + vision), so the space must pick the vision tower; with CLIP's mean/std."""
    from transformers import CLIPConfig, CLIPModel

    torch.manual_seed(0)
    small = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64}
    config = CLIPConfig(
        text_config={**small, "vocab_size": 100, "max_position_embeddings": 16},
        vision_config={**small, "image_size": 32, "patch_size": 8},
        projection_dim=16,
    )
    path = tmp / "clip-tiny"
    CLIPModel(config).save_pretrained(path, safe_serialization=True)
    clip_norm = {"image_mean": [0.4815, 0.4578, 0.4082], "image_std": [0.2686, 0.2613, 0.2758]}
    (path / "preprocessor_config.json").write_text(json.dumps(clip_norm))
    return {"path": str(path)}


# Every registered name is a case; spaces that need a checkpoint get a tiny one. Extra variants follow.
SETUPS: dict[str, tuple[str, Callable[[Path], dict[str, Any]]]] = {
    **{name: (name, lambda tmp: {}) for name in FEATURE_SPACES.names()},
    "rgb-pool4": ("rgb", lambda tmp: {"pool": 4}),
    "fourier-fft": ("fourier", lambda tmp: {"mode": "fft"}),
    # input_size 64 (the default) is covered below; 32 keeps the backward quick; micro_batch 4 splits the batch
    "sl": ("sl", lambda tmp: {"input_size": 32, "micro_batch": 4}),
    "ssl": ("ssl", _tiny_ssl),
    "hf": ("hf", _tiny_vit),
    "hf-clip": ("hf", _tiny_clip),
}


def _residuals(n: int = 6, seed: int = 0) -> torch.Tensor:
    return 0.1 * torch.randn(n, 3, S, S, generator=torch.Generator().manual_seed(seed))


def test_every_registered_space_has_a_case() -> None:
    assert set(FEATURE_SPACES.names()) <= {space for space, _ in SETUPS.values()}


@pytest.mark.parametrize("case", sorted(SETUPS))
def test_space_contract(case: str, tmp_path: Path) -> None:
    name, setup = SETUPS[case]
    options = setup(tmp_path)
    space = create_space(name, S, **options)
    x = _residuals()

    out = space.embed(x)
    assert out.shape == (6, space.dim) and out.dtype == torch.float32
    assert torch.isfinite(out).all()
    # Deterministic across calls and across fresh instances (no random init slips in).
    assert torch.equal(out, space.embed(x))
    assert torch.equal(out, create_space(name, S, **options).embed(x))
    # Batch-independent: a batch embeds as its halves do.
    halves = torch.cat((space.embed(x[:3]), space.embed(x[3:])))
    torch.testing.assert_close(out, halves, rtol=1e-4, atol=1e-5)
    # Differentiable: gradients reach the residual.
    leaf = x.clone().requires_grad_(True)
    space.embed(leaf).square().mean().backward()
    assert leaf.grad is not None and torch.isfinite(leaf.grad).all() and leaf.grad.abs().sum() > 0
    # The identity names the space and is plain strings (it is stored beside the vectors).
    identity = space.identity()
    assert identity["name"] == name and all(isinstance(v, str) for v in identity.values())
    with pytest.raises(ValueError):
        space.embed(torch.zeros(2, 3, S // 2, S // 2))


def test_unknown_option_is_an_error() -> None:
    with pytest.raises(TypeError, match="pol"):
        create_space("rgb", S, pol=2)


def test_rgb_pool_is_block_average() -> None:
    x = _residuals(2)
    out = create_space("rgb", S, pool=4).embed(x)
    expected = x.reshape(2, 3, S // 4, 4, S // 4, 4).mean(dim=(3, 5)).flatten(1)
    torch.testing.assert_close(out, expected)


def test_dct_matches_scipy_and_concentrates_a_constant_in_dc() -> None:
    space = create_space("dct", S)
    x = _residuals(2)
    expected = np.log(np.abs(scipy.fft.dctn(x.double().numpy(), axes=(-2, -1), norm="ortho")) + space.eps)
    np.testing.assert_allclose(space.embed(x).numpy(), expected.reshape(2, -1), rtol=1e-4, atol=1e-4)

    coeffs = space.coefficients(torch.full((1, 3, S, S), 0.3))
    assert torch.allclose(coeffs[:, :, 0, 0], torch.full((1, 3), 0.3 * S))  # orthonormal: DC = mean * S
    coeffs[:, :, 0, 0] = 0
    assert coeffs.abs().max() < 1e-5


def test_fourier_fft_mode_matches_numpy() -> None:
    space = create_space("fourier", S, mode="fft")
    x = _residuals(2)
    spectrum = np.fft.fftshift(np.fft.fft2(x.double().numpy(), norm="ortho"), axes=(-2, -1))
    expected = np.log(np.abs(spectrum) + space.eps).reshape(2, -1)
    np.testing.assert_allclose(space.embed(x).numpy(), expected, rtol=1e-4, atol=1e-4)


def test_qft_of_grey_image_is_sqrt3_times_fft() -> None:
    # R = G = B = g makes f = g (i + j + k) = sqrt(3) g mu, so F = sqrt(3) FFT(g) mu and |F| = sqrt(3) |FFT(g)|.
    space = create_space("fourier", S)
    g = _residuals(2)[:, :1]
    spectrum = np.fft.fftshift(np.fft.fft2(g[:, 0].double().numpy(), norm="ortho"), axes=(-2, -1))
    expected = np.log(math.sqrt(3) * np.abs(spectrum) + space.eps).reshape(2, -1)
    np.testing.assert_allclose(space.embed(g.expand(-1, 3, -1, -1)).numpy(), expected, rtol=1e-4, atol=1e-4)


def _qmul(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Hamilton product of quaternions stored as (w, x, y, z) on the last axis."""
    pw, pv, qw, qv = p[..., 0], p[..., 1:], q[..., 0], q[..., 1:]
    w = pw * qw - (pv * qv).sum(-1)
    v = pw[..., None] * qv + qw[..., None] * pv + np.cross(pv, qv)
    return np.concatenate((w[..., None], v), axis=-1)


def test_qft_matches_direct_quaternion_dft() -> None:
    """The symplectic two-FFT shortcut equals the QFT summed term by term in quaternion arithmetic."""
    from causalprint.features.spaces.fourier import qft_magnitude

    n = 4
    rgb = np.random.default_rng(0).normal(size=(3, n, n))
    f = np.concatenate((np.zeros((1, n, n)), rgb)).transpose(1, 2, 0)  # pure quaternion per pixel
    mu = np.array([1.0, 1.0, 1.0]) / math.sqrt(3)
    coords = np.arange(n)
    magnitude = np.zeros((n, n))
    for u in range(n):
        for v in range(n):
            theta = 2 * math.pi * (u * coords[:, None] + v * coords[None, :]) / n
            kernel = np.concatenate((np.cos(theta)[..., None], -np.sin(theta)[..., None] * mu), axis=-1)
            magnitude[u, v] = np.linalg.norm(_qmul(kernel, f).sum(axis=(0, 1))) / n
    ours = qft_magnitude(torch.from_numpy(rgb).float()[None])[0].double().numpy()
    np.testing.assert_allclose(ours, magnitude, rtol=1e-5, atol=1e-5)


def test_efficientnet_space_uses_the_real_weights() -> None:
    from causalprint.features.efficientnet import weights_path

    space = create_space("sl", S)
    digest = hashlib.sha256(Path(weights_path()).read_bytes()).hexdigest()
    assert space.identity()["weights_sha256"] == digest
    state = torch.load(weights_path(), map_location="cpu", weights_only=True)
    model_state = space._embedder.model.state_dict()
    assert all(torch.equal(model_state[k].cpu(), v) for k, v in state.items())
    a, b = space.embed(_residuals(2, seed=1)), space.embed(_residuals(2, seed=2))
    assert (a - b).abs().max() > 1e-3


def test_hf_head_checkpoint_falls_back_to_cls_token(tmp_path: Path) -> None:
    """A classifier checkpoint has no trained pooler: the space must use the CLS token, not a random pooler."""
    from transformers import ViTConfig, ViTForImageClassification

    config = ViTConfig(
        image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64
    )
    ViTForImageClassification(config).save_pretrained(tmp_path / "vit-head", safe_serialization=True)
    x = _residuals(2)
    first = create_space("hf", S, path=str(tmp_path / "vit-head"))
    assert torch.equal(first.embed(x), create_space("hf", S, path=str(tmp_path / "vit-head")).embed(x))
    with pytest.raises(ValueError, match="no trained pooler"):
        create_space("hf", S, path=str(tmp_path / "vit-head"), pooling="pooler")


def test_ssl_and_hf_identities_carry_the_weights_hash(tmp_path: Path) -> None:
    for name, setup in (("ssl", _tiny_ssl), ("hf", _tiny_vit)):
        options = setup(tmp_path)
        digest = hashlib.sha256((Path(options["path"]) / "model.safetensors").read_bytes()).hexdigest()
        identity = create_space(name, S, **options).identity()
        assert identity["weights_sha256"] == digest and identity["checkpoint"] == Path(options["path"]).name


def test_hf_uses_clip_vision_tower_and_its_normalisation(tmp_path: Path) -> None:
    from transformers import CLIPModel

    options = _tiny_clip(tmp_path)
    space = create_space("hf", S, **options)
    x = _residuals(2)
    clip = CLIPModel.from_pretrained(options["path"]).eval()
    mean = torch.tensor([0.4815, 0.4578, 0.4082]).view(1, 3, 1, 1)
    std = torch.tensor([0.2686, 0.2613, 0.2758]).view(1, 3, 1, 1)
    with torch.no_grad():
        expected = clip.vision_model(pixel_values=(0.5 + x / 4 - mean) / std).pooler_output
    torch.testing.assert_close(space.embed(x), expected)
