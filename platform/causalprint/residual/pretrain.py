"""Train the reference diffusion model on real images only, save it as a diffusers folder, record it in MLflow.

The reference never sees generator outputs: its reconstructions are good on real images, so what it cannot
reconstruct in a generated image is the generator's trace.
"""

from __future__ import annotations

import logging

import numpy as np
import torch
from diffusers import DDIMScheduler
from pydantic import Field

from causalprint.config import StrictModel
from causalprint.data.crops import CropConfig, random_crops
from causalprint.data.photos import PhotoSetConfig, load_photo_groups
from causalprint.diffusion.networks import small_autoencoder, small_unet
from causalprint.diffusion.training import TRAIN_TIMESTEPS, train_autoencoder, train_noise_predictor
from causalprint.progress import ProgressLogger
from causalprint.residual.reference import ReferenceModel
from causalprint.runtime.device import pick_device
from causalprint.seeding import derive_seed
from causalprint.storage import StorageConfig
from causalprint.zoo.base import minibatches

log = logging.getLogger(__name__)


class ReferenceTrainConfig(StrictModel):
    """What the reference model is and how long it trains."""

    name: str = Field(default="reference", pattern=r"^[a-z0-9][a-z0-9_-]*$")
    image_size: int = Field(default=32, ge=8)
    photos: PhotoSetConfig = PhotoSetConfig()
    crops: CropConfig = CropConfig()
    train_crops: int = Field(default=4000, ge=8)
    unet_width: int = Field(default=32, ge=4)
    unet_levels: int = Field(default=3, ge=1, le=5)
    unet_steps: int = Field(default=1000, ge=1)
    vae_width: int = Field(default=16, ge=4)
    vae_steps: int = Field(default=600, ge=0, description="0 = no autoencoder (no latent mode)")
    batch_size: int = Field(default=64, ge=1)
    lr: float = Field(default=1e-3, gt=0)
    seed: int = 0
    torch_threads: int | None = Field(
        default=None,
        ge=1,
        description="CPU threads of the training (default: torch's). One thread on a small "
        "model: on a busy machine with few cores, oversubscribed OpenMP threads stall",
    )


def reference_prefix(name: str) -> str:
    """Root-relative folder of a reference model in storage."""
    return f"models/reference/{name}"


def real_training_images(config: ReferenceTrainConfig, storage: StorageConfig | None = None) -> torch.Tensor:
    """Real crops from every content group, from a seed stream the zoo never uses, in [-1, 1]."""
    groups = load_photo_groups(config.photos, storage)
    per_group = -(-config.train_crops // len(groups))
    crops = np.concatenate(
        [
            random_crops(photos, per_group, config.image_size, derive_seed(config.seed, "reference", g), config.crops)
            for g, photos in sorted(groups.items())
        ]
    )[: config.train_crops]
    return torch.from_numpy(crops).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)


def train_reference(config: ReferenceTrainConfig, images: torch.Tensor) -> tuple[ReferenceModel, dict[str, float]]:
    """Fit the UNet (and the autoencoder) on ``images``; returns the frozen model and its final losses."""
    torch.manual_seed(config.seed)
    threads = torch.get_num_threads()
    if config.torch_threads:
        torch.set_num_threads(config.torch_threads)
    try:
        return _train_reference(config, images)
    finally:
        torch.set_num_threads(threads)


def _train_reference(config: ReferenceTrainConfig, images: torch.Tensor) -> tuple[ReferenceModel, dict[str, float]]:
    device = pick_device()
    images = images.to(device)
    unet = small_unet(config.image_size, 3, config.unet_width, config.unet_levels).to(device)
    scheduler = DDIMScheduler(num_train_timesteps=TRAIN_TIMESTEPS, beta_schedule="linear", clip_sample=False)
    total = config.unet_steps + config.vae_steps
    progress = ProgressLogger(f"reference {config.name}", total, unit="step", every_s=30)
    batches = minibatches(images, config.batch_size, seed=config.seed)
    metrics = train_noise_predictor(unet, scheduler, batches, config.unet_steps, config.seed + 1, progress, config.lr)
    vae = None
    if config.vae_steps:
        vae = small_autoencoder(config.vae_width).to(device)
        batches = minibatches(images, config.batch_size, seed=config.seed + 2)
        metrics["vae_loss"] = train_autoencoder(vae, batches, config.vae_steps, config.seed + 3, progress, config.lr)
    info = {"trained_on": "real crops only", "train_images": int(images.shape[0]), **metrics}
    return ReferenceModel(unet.cpu(), scheduler, vae.cpu() if vae is not None else None, info=info), metrics
