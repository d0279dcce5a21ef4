"""Latent residual (AEROBLADE, Ricker et al. CVPR 2024; LaRE^2): the autoencoder's reconstruction error.

x_hat = D(mean of E(x)); residual = x - x_hat. Deterministic (the posterior mean, no sampling); costs one
encoder and one decoder pass; differentiable.
"""

from __future__ import annotations

import torch

from causalprint.residual.modes.base import ResidualMode


class LatentMode(ResidualMode):
    name = "latent"
    differentiable = True

    @property
    def denoiser_passes(self) -> int:
        return 0

    def reconstruct(self, images: torch.Tensor, seeds: torch.Tensor) -> torch.Tensor:
        vae = self.reference.vae
        if vae is None:
            raise ValueError(f"reference model {self.reference.identity.id} has no vae/; the latent mode needs one")
        return vae.decode(vae.encode(images).latent_dist.mean).sample.float()
