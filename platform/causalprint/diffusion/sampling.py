"""Reverse diffusion with any diffusers scheduler, reproducible from a seed."""

from __future__ import annotations

import torch
from diffusers import UNet2DModel
from diffusers.schedulers.scheduling_utils import SchedulerMixin

from causalprint.seeding import seeded_noise


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
