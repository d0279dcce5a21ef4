"""Loading a diffusers folder: identity, safetensors only, bit-identical residuals after a reload."""

from __future__ import annotations

import shutil

import pytest
import torch

from causalprint.residual.reference import ReferenceModel
from causalprint.residual.registry import RESIDUAL_MODES, create_mode


def _images(n: int = 4, size: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    return torch.rand((n, 3, size, size), generator=gen) * 2 - 1, torch.arange(n) + 11


def test_folder_is_diffusers_format_with_safetensors(tiny_reference_dir) -> None:
    names = {p.relative_to(tiny_reference_dir).as_posix() for p in tiny_reference_dir.rglob("*") if p.is_file()}
    assert "unet/diffusion_pytorch_model.safetensors" in names
    assert "vae/diffusion_pytorch_model.safetensors" in names
    assert "scheduler/scheduler_config.json" in names
    assert not any(n.endswith((".bin", ".pt", ".pth", ".pkl")) for n in names)


@pytest.mark.parametrize("mode", RESIDUAL_MODES.names())
def test_reloaded_reference_gives_bit_identical_residuals(tiny_reference_dir, tmp_path, mode: str) -> None:
    first = ReferenceModel.from_pretrained(tiny_reference_dir)
    copy = tmp_path / "copy"
    first.save_pretrained(copy)
    second = ReferenceModel.from_pretrained(copy)
    assert second.identity == first.identity
    x, seeds = _images()
    options = {"steps": 2} if mode == "dire" else {}
    a = create_mode(mode, first, **options)(x, seeds)
    b = create_mode(mode, second, **options)(x, seeds)
    assert torch.equal(a, b)


def test_identity_changes_with_the_weights(tiny_reference_dir, tmp_path) -> None:
    model = ReferenceModel.from_pretrained(tiny_reference_dir)
    with torch.no_grad():
        next(model.unet.parameters()).add_(1.0)
    assert (
        model.save_pretrained(tmp_path / "changed").sha256
        != ReferenceModel.from_pretrained(tiny_reference_dir).identity.sha256
    )


def test_pickled_weights_are_refused(tiny_reference_dir, tmp_path) -> None:
    folder = tmp_path / "pickled"
    shutil.copytree(tiny_reference_dir, folder)
    weights = folder / "unet" / "diffusion_pytorch_model.safetensors"
    model = ReferenceModel.from_pretrained(folder)
    torch.save(model.unet.state_dict(), folder / "unet" / "diffusion_pytorch_model.bin")
    weights.unlink()
    with pytest.raises(Exception, match="safetensors|diffusion_pytorch_model"):
        ReferenceModel.from_pretrained(folder)


def test_not_a_reference_folder(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="no unet/"):
        ReferenceModel.from_pretrained(tmp_path)
