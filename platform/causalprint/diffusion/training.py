"""Training loops for a noise predictor (DDPM, Ho et al. 2020) and an AutoencoderKL (Rombach et al. 2022)."""

from __future__ import annotations

from collections.abc import Iterator

import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL, UNet2DModel
from diffusers.schedulers.scheduling_utils import SchedulerMixin

from causalprint.progress import ProgressLogger

TRAIN_TIMESTEPS = 1000


def train_noise_predictor(
    unet: UNet2DModel,
    scheduler: SchedulerMixin,
    batches: Iterator[torch.Tensor],
    steps: int,
    seed: int,
    progress: ProgressLogger,
    lr: float,
) -> dict[str, float]:
    """Fit ``unet`` to predict the added noise at uniformly drawn timesteps (the simple loss, DDPM eq. 14)."""
    unet.train()
    opt = torch.optim.AdamW(unet.parameters(), lr=lr, weight_decay=0.0)
    gen = torch.Generator().manual_seed(seed)
    ema = None
    for _ in range(steps):
        x0 = next(batches).to(next(unet.parameters()).device)
        noise = torch.randn(x0.shape, generator=gen).to(x0.device)
        t = torch.randint(0, TRAIN_TIMESTEPS, (x0.shape[0],), generator=gen).to(x0.device)
        loss = F.mse_loss(unet(scheduler.add_noise(x0, noise, t), t).sample, noise)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        ema = loss.item() if ema is None else 0.98 * ema + 0.02 * loss.item()
        progress.update(1, loss=ema)
    unet.eval()
    return {"loss": float(ema or 0.0)}


def train_autoencoder(
    vae: AutoencoderKL,
    batches: Iterator[torch.Tensor],
    steps: int,
    seed: int,
    progress: ProgressLogger,
    lr: float,
    kl_weight: float = 1e-4,
) -> float:
    """Reconstruction (L1) plus a small KL to the unit Gaussian (LDM's KL-regularised autoencoder)."""
    opt = torch.optim.AdamW(vae.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    vae.train()
    ema = None
    for _ in range(steps):
        x = next(batches).to(next(vae.parameters()).device)
        posterior = vae.encode(x).latent_dist
        z = posterior.mean + posterior.std * torch.randn(posterior.mean.shape, generator=gen).to(x.device)
        recon = vae.decode(z).sample
        loss = F.l1_loss(recon, x) + kl_weight * posterior.kl().mean() / x[0].numel()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        ema = loss.item() if ema is None else 0.98 * ema + 0.02 * loss.item()
        progress.update(1, ae_loss=ema)
    vae.eval()
    return float(ema or 0.0)
