"""Pixel-space diffusion families built with diffusers: a UNet2DModel trained to predict noise (Ho et al. 2020).

Two sources share the network code but differ in what leaves a fingerprint: ``ddpm`` trains on a linear beta
schedule and samples with ancestral DDPM steps; ``ddim`` trains on a cosine schedule (Nichol & Dhariwal 2021)
and samples with deterministic DDIM steps (Song et al. 2021, eta = 0).
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F
from diffusers import DDIMScheduler, DDPMScheduler, UNet2DModel
from diffusers.schedulers.scheduling_utils import SchedulerMixin
from torch import nn

from causalprint.progress import ProgressLogger
from causalprint.zoo.base import GeneratorFamily, GeneratorSpec, minibatches, seeded_noise

TRAIN_TIMESTEPS = 1000


def small_unet(sample_size: int, channels: int, width: int, levels: int) -> UNet2DModel:
    """A compact UNet: ``levels`` resolutions, one ResNet block each, no attention (CPU-friendly)."""
    widths = tuple(width * min(2**i, 2) for i in range(levels))
    return UNet2DModel(
        sample_size=sample_size,
        in_channels=channels,
        out_channels=channels,
        layers_per_block=1,
        block_out_channels=widths,
        down_block_types=("DownBlock2D",) * levels,
        up_block_types=("UpBlock2D",) * levels,
        norm_num_groups=min(8, width),
    )


def train_noise_predictor(
    unet: UNet2DModel,
    scheduler: SchedulerMixin,
    data: torch.Tensor,
    spec: GeneratorSpec,
    progress: ProgressLogger,
    lr: float,
) -> dict[str, float]:
    """Fit ``unet`` to predict the added noise at uniformly drawn timesteps (the simple loss of DDPM, eq. 14)."""
    unet.train()
    opt = torch.optim.AdamW(unet.parameters(), lr=lr, weight_decay=0.0)
    gen = torch.Generator().manual_seed(spec.seed + 1)
    batches = minibatches(data, spec.batch_size, seed=spec.seed)
    ema = None
    for _ in range(spec.train_steps):
        x0 = next(batches).to(next(unet.parameters()).device)
        noise = torch.randn(x0.shape, generator=gen).to(x0.device)
        t = torch.randint(0, TRAIN_TIMESTEPS, (x0.shape[0],), generator=gen).to(x0.device)
        xt = scheduler.add_noise(x0, noise, t)
        loss = F.mse_loss(unet(xt, t).sample, noise)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        ema = loss.item() if ema is None else 0.98 * ema + 0.02 * loss.item()
        progress.update(1, loss=ema)
    unet.eval()
    return {"loss": float(ema or 0.0)}


@torch.no_grad()
def run_sampler(
    unet: UNet2DModel, scheduler: SchedulerMixin, shape: tuple[int, ...], steps: int, seed: int
) -> torch.Tensor:
    """Reverse diffusion from seeded noise; ancestral noise is drawn from a generator tied to ``seed``."""
    device = next(unet.parameters()).device
    gen = torch.Generator().manual_seed(seed)
    x = seeded_noise(shape, seed).to(device)
    scheduler.set_timesteps(steps)
    for t in scheduler.timesteps:
        eps = unet(x, t).sample
        x = scheduler.step(eps, t, x, generator=gen).prev_sample
    return x


class PixelDiffusion(GeneratorFamily):
    """Shared body of the pixel-space diffusion families."""

    family = "diffusion"
    beta_schedule: ClassVar[str]

    def __init__(self, spec: GeneratorSpec, image_size: int) -> None:
        super().__init__(spec, image_size)
        levels = int(spec.options.get("levels", 3))
        self.unet = small_unet(image_size, 3, spec.width, levels)

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
        return train_noise_predictor(
            self.unet, self.train_scheduler(), images, self.spec, progress, lr=self.spec.lr or 1e-3
        )

    def sample(self, n: int, seed: int, batch_size: int = 256) -> torch.Tensor:
        self.unet.eval()
        chunks = []
        for i, start in enumerate(range(0, n, batch_size)):
            size = min(batch_size, n - start)
            shape = (size, 3, self.image_size, self.image_size)
            x = run_sampler(self.unet, self.sample_scheduler(), shape, self.spec.sample_steps, seed * 100_003 + i)
            chunks.append(x.clamp(-1, 1).cpu())
        return torch.cat(chunks)


class DDPMGenerator(PixelDiffusion):
    """Linear-schedule DDPM sampled with ancestral DDPM steps."""

    beta_schedule = "linear"

    def sample_scheduler(self) -> SchedulerMixin:
        return DDPMScheduler(num_train_timesteps=TRAIN_TIMESTEPS, beta_schedule=self.beta_schedule)


class DDIMGenerator(PixelDiffusion):
    """Cosine-schedule diffusion model sampled with deterministic DDIM steps."""

    beta_schedule = "squaredcos_cap_v2"

    def sample_scheduler(self) -> SchedulerMixin:
        return DDIMScheduler(
            num_train_timesteps=TRAIN_TIMESTEPS, beta_schedule=self.beta_schedule, clip_sample=True
        )
