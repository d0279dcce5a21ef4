"""Pixel-space diffusion families built with diffusers: a UNet2DModel trained to predict noise (Ho et al. 2020).

Two sources share the network code but differ in what leaves a fingerprint: ``ddpm`` trains on a linear beta
schedule and samples with ancestral DDPM steps; ``ddim`` trains on a cosine schedule (Nichol & Dhariwal 2021)
and samples with deterministic DDIM steps (Song et al. 2021, eta = 0).
"""

from __future__ import annotations

from typing import ClassVar

import torch
from diffusers import DDIMScheduler, DDPMScheduler
from diffusers.schedulers.scheduling_utils import SchedulerMixin
from torch import nn

from causalprint.diffusion.networks import small_unet
from causalprint.diffusion.sampling import run_sampler
from causalprint.diffusion.training import TRAIN_TIMESTEPS, train_noise_predictor
from causalprint.progress import ProgressLogger
from causalprint.zoo.base import GeneratorFamily, GeneratorSpec, minibatches, sample_seeds


class PixelDiffusion(GeneratorFamily):
    """Shared body of the pixel-space diffusion families."""

    family = "diffusion"
    beta_schedule: ClassVar[str]

    def __init__(self, spec: GeneratorSpec, image_size: int) -> None:
        super().__init__(spec, image_size)
        self.unet = small_unet(image_size, 3, spec.width, int(spec.option("levels", 3)))

    def modules(self) -> dict[str, nn.Module]:
        return {"unet": self.unet}

    def sampling_modules(self) -> list[str]:
        return ["unet"]

    def train_scheduler(self) -> SchedulerMixin:
        return DDPMScheduler(num_train_timesteps=TRAIN_TIMESTEPS, beta_schedule=self.beta_schedule)

    def sample_scheduler(self) -> SchedulerMixin:
        raise NotImplementedError

    def fit(self, images: torch.Tensor, progress: ProgressLogger) -> dict[str, float]:
        self.unet.to(images.device)
        batches = minibatches(images, self.spec.batch_size, seed=self.spec.seed)
        return train_noise_predictor(
            self.unet,
            self.train_scheduler(),
            batches,
            self.spec.train_steps,
            self.spec.seed + 1,
            progress,
            lr=self.spec.lr or 1e-3,
        )

    def sample(self, n: int, seed: int, batch_size: int = 256) -> torch.Tensor:
        self.unet.eval()
        seeds = sample_seeds(seed, n)
        shape = (3, self.image_size, self.image_size)
        chunks = [
            run_sampler(self.unet, self.sample_scheduler(), shape, self.spec.sample_steps, seeds[i : i + batch_size])
            .clamp(-1, 1)
            .cpu()
            for i in range(0, n, batch_size)
        ]
        return torch.cat(chunks) if chunks else torch.zeros((0, *shape))


class DDPMGenerator(PixelDiffusion):
    """Linear-schedule DDPM sampled with ancestral DDPM steps."""

    beta_schedule = "linear"

    def sample_scheduler(self) -> SchedulerMixin:
        return DDPMScheduler(num_train_timesteps=TRAIN_TIMESTEPS, beta_schedule=self.beta_schedule)


class DDIMGenerator(PixelDiffusion):
    """Cosine-schedule diffusion model sampled with deterministic DDIM steps."""

    beta_schedule = "squaredcos_cap_v2"

    def sample_scheduler(self) -> SchedulerMixin:
        return DDIMScheduler(num_train_timesteps=TRAIN_TIMESTEPS, beta_schedule=self.beta_schedule, clip_sample=True)
