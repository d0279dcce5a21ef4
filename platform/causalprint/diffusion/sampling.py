"""Reverse diffusion with any diffusers scheduler, reproducible from a seed."""

from __future__ import annotations

import torch
from diffusers import UNet2DModel
from diffusers.schedulers.scheduling_utils import SchedulerMixin

from causalprint.seeding import seeded_noise


@torch.no_grad()
def run_sampler(
    unet: UNet2DModel, scheduler: SchedulerMixin, shape: tuple[int, ...], steps: int, seeds: list[int]
) -> torch.Tensor:
    """Reverse diffusion of ``len(seeds)`` samples of ``shape`` (one sample, no batch axis).

    Each sample's starting noise and ancestral noise come from its own seed, so a sample does not depend on
    the batch it is drawn in.
    """
    device = next(unet.parameters()).device
    x = torch.stack([seeded_noise(shape, s) for s in seeds]).to(device)
    generators = [torch.Generator().manual_seed(s + 1) for s in seeds]
    scheduler.set_timesteps(steps)
    for t in scheduler.timesteps:
        eps = unet(x, t).sample
        x = scheduler.step(eps, t, x, generator=generators).prev_sample
    return x
