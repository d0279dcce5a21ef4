"""The contract of a residual mode: images in [-1, 1] in, residual maps ``x - x_hat`` of the same shape out."""

from __future__ import annotations

from abc import ABC, abstractmethod
from contextlib import nullcontext
from typing import Any, ClassVar

import torch

from causalprint.config import StrictModel
from causalprint.residual.reference import ReferenceModel
from causalprint.seeding import seeded_noise


class ModeOptions(StrictModel):
    """Options every mode accepts; modes subclass this with their own fields."""


class ResidualMode(ABC):
    """A batched, deterministic reconstruction residual against a frozen reference model.

    ``seeds`` give each image its own noise stream, so an image's residual does not depend on which batch it
    travelled in. ``autocast`` is a dtype for mixed precision on CUDA (``None`` = full precision).
    """

    name: ClassVar[str]
    options_model: ClassVar[type[ModeOptions]] = ModeOptions
    #: Whether gradients flow from the residual back to the input image.
    differentiable: ClassVar[bool] = False

    def __init__(self, reference: ReferenceModel, autocast: torch.dtype | None = None, **options: Any) -> None:
        self.reference = reference
        self.options = self.options_model.model_validate(options)
        self.autocast = autocast

    @property
    @abstractmethod
    def denoiser_passes(self) -> int:
        """Network evaluations per image (the cost model: DIRE 2 x steps, one-step 1)."""

    @abstractmethod
    def reconstruct(self, images: torch.Tensor, seeds: torch.Tensor) -> torch.Tensor:
        """``x_hat`` for images ``[N, 3, S, S]`` in [-1, 1]."""

    def __call__(self, images: torch.Tensor, seeds: torch.Tensor) -> torch.Tensor:
        """The residual ``x - x_hat`` (float32, same shape as ``images``)."""
        if images.shape[-1] != self.reference.image_size or images.shape[-2] != self.reference.image_size:
            raise ValueError(
                f"images are {tuple(images.shape[-2:])} but the reference model {self.reference.identity.id} "
                f"works at {self.reference.image_size}x{self.reference.image_size}; set intake.size to match"
            )
        grad = torch.enable_grad() if self.differentiable and images.requires_grad else torch.no_grad()
        with grad, self._precision(images.device):
            x_hat = self.reconstruct(images, seeds)
        return images - x_hat.float()

    def _precision(self, device: torch.device):
        if self.autocast is None:
            return nullcontext()
        return torch.autocast(device_type=device.type, dtype=self.autocast)

    def options_dict(self) -> dict[str, Any]:
        return self.options.model_dump()


def per_image_noise(seeds: torch.Tensor, shape: tuple[int, ...], device: torch.device) -> torch.Tensor:
    """One noise tensor per image, each drawn from its own seed."""
    return torch.stack([seeded_noise(shape, int(s)) for s in seeds.tolist()]).to(device)


def alpha_bar(reference: ReferenceModel, t: int | torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """The cumulative signal level abar_t of the reference scheduler, shaped to broadcast over ``like``."""
    ab = reference.scheduler.alphas_cumprod.to(like.device)[t]
    return ab.to(like.dtype).reshape(-1, *([1] * (like.dim() - 1))) if ab.dim() else ab.to(like.dtype)
