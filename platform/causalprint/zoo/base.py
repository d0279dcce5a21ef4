"""The contract every generator family of the zoo follows, and how a trained generator round-trips a folder.

A family is one small module in ``causalprint.zoo.generators`` with a subclass of :class:`GeneratorFamily`,
listed once in :mod:`causalprint.zoo.registry`. Images cross the boundary as float tensors ``[N, 3, S, S]``
in ``[-1, 1]``.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from pathlib import Path
from typing import ClassVar, Literal

import torch
from pydantic import Field
from safetensors.torch import load_file, save_file
from torch import nn

from causalprint.config import StrictModel
from causalprint.data.crops import CropConfig
from causalprint.progress import ProgressLogger
from causalprint.seeding import derive_seed, seeded_noise

__all__ = ["Family", "GeneratorFamily", "GeneratorSpec", "minibatches", "sample_seeds", "seeded_noise"]

Family = Literal["gan", "diffusion", "vae", "real"]


class GeneratorSpec(StrictModel):
    """One generator of a zoo preset. ``name`` is the source label; ``arch`` picks the family module."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    arch: str
    seed: int = 0
    content_group: str
    train_steps: int = Field(ge=1)
    batch_size: int = Field(default=64, ge=1)
    lr: float | None = Field(default=None, gt=0)
    width: int = Field(default=32, ge=4, description="base channel count")
    sample_steps: int = Field(default=50, ge=1, description="sampler steps for diffusion families")
    options: dict[str, float | int | str | bool | list[float]] = Field(default_factory=dict)
    photos: list[str] | None = Field(
        default=None,
        min_length=1,
        description="file-name patterns that narrow the content group to a subset of "
        "its photographs (another instance of an architecture on other scenes of the same group)",
    )
    crops: CropConfig | None = Field(
        default=None,
        description="crop scales of this generator's training images, in place of the zoo's "
        "(another instance of an architecture on the same photographs seen at another scale)",
    )

    def option(self, key: str, default: float) -> float | int | str | bool:
        """The single-valued option ``key`` (``default`` when absent), for the family to read with ``int`` or
        ``float``; a list there is an error."""
        value = self.options.get(key, default)
        if isinstance(value, list):
            raise TypeError(f"option {key!r} of generator {self.name!r} must be a single value, got {value!r}")
        return value


class GeneratorFamily(ABC):
    """A trainable image generator. Subclasses build their modules in ``__init__`` from the spec, seeded."""

    family: ClassVar[Family]

    def __init__(self, spec: GeneratorSpec, image_size: int) -> None:
        if image_size < 8 or image_size & (image_size - 1):
            raise ValueError(f"image_size must be a power of two >= 8, got {image_size}")
        self.spec = spec
        self.image_size = image_size
        torch.manual_seed(spec.seed)

    @abstractmethod
    def modules(self) -> dict[str, nn.Module]:
        """Every module whose weights define the trained generator (saved and loaded by name)."""

    @abstractmethod
    def sampling_modules(self) -> list[str]:
        """Names of the modules needed to sample; their parameters are the reported size."""

    @abstractmethod
    def fit(self, images: torch.Tensor, progress: ProgressLogger) -> dict[str, float]:
        """Train for ``spec.train_steps`` steps on ``images`` in [-1, 1]; return final training metrics."""

    @abstractmethod
    def sample(self, n: int, seed: int, batch_size: int = 256) -> torch.Tensor:
        """Draw ``n`` images ``[n, 3, S, S]`` in [-1, 1], deterministically for a given ``seed``."""

    def total_steps(self) -> int:
        """Optimiser steps that ``fit`` takes (for progress and rate reporting)."""
        return self.spec.train_steps

    def parameter_count(self) -> int:
        mods = self.modules()
        return sum(p.numel() for name in self.sampling_modules() for p in mods[name].parameters())

    def eval(self) -> None:
        for module in self.modules().values():
            module.eval()

    def save_pretrained(self, directory: str | Path) -> None:
        """Write ``config.json`` and ``model.safetensors`` (never a pickle)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        tensors = {
            f"{mod_name}.{key}": value.detach().contiguous().cpu()
            for mod_name, module in self.modules().items()
            for key, value in module.state_dict().items()
        }
        save_file(tensors, str(directory / "model.safetensors"))
        config = {"spec": self.spec.model_dump(), "image_size": self.image_size, "family": self.family}
        (directory / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True))

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> GeneratorFamily:
        """Rebuild the generator saved in ``directory`` by :meth:`save_pretrained`."""
        directory = Path(directory)
        config = json.loads((directory / "config.json").read_text())
        spec = GeneratorSpec.model_validate(config["spec"])
        instance = cls(spec, int(config["image_size"]))
        tensors = load_file(str(directory / "model.safetensors"))
        for mod_name, module in instance.modules().items():
            prefix = f"{mod_name}."
            state = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
            module.load_state_dict(state, strict=True)
        instance.eval()
        return instance


def sample_seeds(seed: int, n: int) -> list[int]:
    """One seed per sample index, so that sample ``i`` of a draw does not depend on the batch size."""
    return [derive_seed(seed, "sample", i) for i in range(n)]


def minibatches(images: torch.Tensor, batch_size: int, seed: int):
    """An endless stream of random minibatches (with horizontal flips), reproducible from ``seed``."""
    gen = torch.Generator().manual_seed(seed)
    n = images.shape[0]
    while True:
        idx = torch.randint(0, n, (min(batch_size, n),), generator=gen)
        batch = images[idx]
        flip = torch.rand(batch.shape[0], generator=gen) < 0.5
        batch[flip] = batch[flip].flip(-1)
        yield batch
