"""Latent diffusion (Rombach et al. 2022): a small diffusers AutoencoderKL plus a UNet2DModel on its latents.

Training runs in two stages inside one ``fit``: the autoencoder (reconstruction + a small KL, their eq. 25)
for ``options.ae_steps`` steps, then the latent noise predictor for ``train_steps`` steps. Latents are scaled
to unit variance, as Stable Diffusion's ``scaling_factor`` does. Sampling uses DDIM.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL, DDIMScheduler, DDPMScheduler
from torch import nn

from causalprint.progress import ProgressLogger
from causalprint.zoo.base import GeneratorFamily, GeneratorSpec, minibatches
from causalprint.zoo.generators.pixel_diffusion import (
    TRAIN_TIMESTEPS,
    run_sampler,
    small_unet,
    train_noise_predictor,
)

LATENT_CHANNELS = 4


def small_autoencoder(width: int) -> AutoencoderKL:
    """An AutoencoderKL that halves the resolution into 4 latent channels."""
    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        block_out_channels=(width, width * 2),
        layers_per_block=1,
        latent_channels=LATENT_CHANNELS,
        norm_num_groups=min(8, width),
    )


class LatentDiffusion(GeneratorFamily):
    """AutoencoderKL + latent UNet, sampled with DDIM and decoded."""

    family = "diffusion"

    def __init__(self, spec: GeneratorSpec, image_size: int) -> None:
        super().__init__(spec, image_size)
        self.vae = small_autoencoder(spec.width)
        levels = int(spec.options.get("levels", 2))
        self.unet = small_unet(image_size // 2, LATENT_CHANNELS, spec.width, levels)
        # Kept as a buffer-like module so it round-trips with the weights.
        self.latent_stats = nn.ParameterDict({"scale": nn.Parameter(torch.ones(()), requires_grad=False)})

    def modules(self) -> dict[str, nn.Module]:
        return {"vae": self.vae, "unet": self.unet, "latent_stats": self.latent_stats}

    def sampling_modules(self) -> list[str]:
        return ["vae", "unet"]

    def _ae_steps(self) -> int:
        return int(self.spec.options.get("ae_steps", max(1, self.spec.train_steps // 2)))

    def total_steps(self) -> int:
        return self._ae_steps() + self.spec.train_steps

    def _fit_autoencoder(self, images: torch.Tensor, progress: ProgressLogger) -> float:
        steps = self._ae_steps()
        kl_weight = float(self.spec.options.get("kl_weight", 1e-4))
        opt = torch.optim.AdamW(self.vae.parameters(), lr=self.spec.lr or 1e-3)
        batches = minibatches(images, self.spec.batch_size, seed=self.spec.seed + 7)
        gen = torch.Generator().manual_seed(self.spec.seed + 11)
        self.vae.train()
        ema = None
        for _ in range(steps):
            x = next(batches)
            posterior = self.vae.encode(x).latent_dist
            z = posterior.mean + posterior.std * torch.randn(posterior.mean.shape, generator=gen).to(x.device)
            recon = self.vae.decode(z).sample
            loss = F.l1_loss(recon, x) + kl_weight * posterior.kl().mean() / x[0].numel()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            ema = loss.item() if ema is None else 0.98 * ema + 0.02 * loss.item()
            progress.update(1, ae_loss=ema)
        self.vae.eval()
        return float(ema or 0.0)

    @torch.no_grad()
    def _encode_all(self, images: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.vae.encode(chunk).latent_dist.mean for chunk in images.split(256)])

    def fit(self, images: torch.Tensor, progress: ProgressLogger) -> dict[str, float]:
        self.vae.to(images.device)
        self.unet.to(images.device)
        ae_loss = self._fit_autoencoder(images, progress)
        latents = self._encode_all(images)
        scale = 1.0 / latents.std().clamp_min(1e-6)
        self.latent_stats["scale"].data.fill_(float(scale))
        train_sched = DDPMScheduler(num_train_timesteps=TRAIN_TIMESTEPS, beta_schedule="linear")
        metrics = train_noise_predictor(
            self.unet, train_sched, latents * scale, self.spec, progress, lr=self.spec.lr or 1e-3
        )
        return {"ae_loss": ae_loss, **metrics}

    @torch.no_grad()
    def sample(self, n: int, seed: int, batch_size: int = 256) -> torch.Tensor:
        self.eval()
        side = self.image_size // 2
        scale = float(self.latent_stats["scale"])
        chunks = []
        for i, start in enumerate(range(0, n, batch_size)):
            size = min(batch_size, n - start)
            sched = DDIMScheduler(num_train_timesteps=TRAIN_TIMESTEPS, beta_schedule="linear", clip_sample=False)
            z = run_sampler(self.unet, sched, (size, LATENT_CHANNELS, side, side), self.spec.sample_steps,
                            seed * 100_003 + i)
            chunks.append(self.vae.decode(z / scale).sample.clamp(-1, 1).cpu())
        return torch.cat(chunks)
