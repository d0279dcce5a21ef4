"""Latent diffusion (Rombach et al. 2022): a small diffusers AutoencoderKL plus a UNet2DModel on its latents.

Training runs in two stages inside one ``fit``: the autoencoder (reconstruction + a small KL, their eq. 25)
for ``options.ae_steps`` steps, then the latent noise predictor for ``train_steps`` steps. Latents are scaled
to unit variance, as Stable Diffusion's ``scaling_factor`` does. Sampling uses DDIM.
"""

from __future__ import annotations

import torch
from diffusers import DDIMScheduler, DDPMScheduler
from torch import nn

from causalprint.diffusion.networks import LATENT_CHANNELS, small_autoencoder, small_unet
from causalprint.diffusion.sampling import run_sampler
from causalprint.diffusion.training import TRAIN_TIMESTEPS, train_autoencoder, train_noise_predictor
from causalprint.progress import ProgressLogger
from causalprint.zoo.base import GeneratorFamily, GeneratorSpec, minibatches, sample_seeds


class LatentDiffusion(GeneratorFamily):
    """AutoencoderKL + latent UNet, sampled with DDIM and decoded."""

    family = "diffusion"

    def __init__(self, spec: GeneratorSpec, image_size: int) -> None:
        super().__init__(spec, image_size)
        self.vae = small_autoencoder(spec.width)
        levels = int(spec.option("levels", 2))
        self.unet = small_unet(image_size // 2, LATENT_CHANNELS, spec.width, levels)
        # Kept as a buffer-like module so it round-trips with the weights.
        self.latent_stats = nn.ParameterDict({"scale": nn.Parameter(torch.ones(()), requires_grad=False)})

    def modules(self) -> dict[str, nn.Module]:
        return {"vae": self.vae, "unet": self.unet, "latent_stats": self.latent_stats}

    def sampling_modules(self) -> list[str]:
        return ["vae", "unet"]

    def _ae_steps(self) -> int:
        return int(self.spec.option("ae_steps", max(1, self.spec.train_steps // 2)))

    def total_steps(self) -> int:
        return self._ae_steps() + self.spec.train_steps

    def _fit_autoencoder(self, images: torch.Tensor, progress: ProgressLogger) -> float:
        batches = minibatches(images, self.spec.batch_size, seed=self.spec.seed + 7)
        return train_autoencoder(
            self.vae,
            batches,
            self._ae_steps(),
            self.spec.seed + 11,
            progress,
            lr=self.spec.lr or 1e-3,
            kl_weight=float(self.spec.option("kl_weight", 1e-4)),
        )

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
        batches = minibatches(latents * scale, self.spec.batch_size, seed=self.spec.seed)
        metrics = train_noise_predictor(
            self.unet,
            train_sched,
            batches,
            self.spec.train_steps,
            self.spec.seed + 1,
            progress,
            lr=self.spec.lr or 1e-3,
        )
        return {"ae_loss": ae_loss, **metrics}

    @torch.no_grad()
    def sample(self, n: int, seed: int, batch_size: int = 256) -> torch.Tensor:
        self.eval()
        side = self.image_size // 2
        scale = float(self.latent_stats["scale"])
        seeds = sample_seeds(seed, n)
        chunks = []
        for i in range(0, n, batch_size):
            sched = DDIMScheduler(num_train_timesteps=TRAIN_TIMESTEPS, beta_schedule="linear", clip_sample=False)
            z = run_sampler(
                self.unet, sched, (LATENT_CHANNELS, side, side), self.spec.sample_steps, seeds[i : i + batch_size]
            )
            chunks.append(self.vae.decode(z / scale).sample.clamp(-1, 1).cpu())
        return torch.cat(chunks) if chunks else torch.zeros((0, 3, self.image_size, self.image_size))
