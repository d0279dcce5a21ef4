"""DIRE (Wang et al., ICCV 2023): DDIM inversion to timestep ``t_end``, then DDIM reconstruction back.

With abar from the reference scheduler and timesteps 0 = t_0 < t_1 < ... < t_K = t_end:
1. inversion, i = 0..K-1: eps = eps_theta(x, t_i); x0 = (x - sqrt(1 - abar_i) eps) / sqrt(abar_i);
   x <- sqrt(abar_{i+1}) x0 + sqrt(1 - abar_{i+1}) eps            (DDIM eq. 12 with eta = 0, run forwards);
2. reconstruction, i = K..1: the same update from t_i down to t_{i-1};
3. residual = x - x_hat. Deterministic: no noise is drawn. Costs 2K denoiser passes.
"""

from __future__ import annotations

import torch
from pydantic import Field

from causalprint.residual.modes.base import ModeOptions, ResidualMode, alpha_bar


class DireOptions(ModeOptions):
    steps: int = Field(default=20, ge=1, le=1000)
    t_end: int = Field(default=999, ge=1, le=999)


class DireMode(ResidualMode):
    name = "dire"
    options_model = DireOptions
    options: DireOptions

    @property
    def denoiser_passes(self) -> int:
        return 2 * self.options.steps

    def _timesteps(self) -> list[int]:
        o = self.options
        return torch.linspace(0, o.t_end, o.steps + 1).round().long().tolist()

    def _ddim_move(self, x: torch.Tensor, t_from: int, t_to: int) -> torch.Tensor:
        timesteps = torch.full((x.shape[0],), t_from, device=x.device, dtype=torch.long)
        eps = self.reference.unet(x, timesteps).sample.float()
        ab_from, ab_to = alpha_bar(self.reference, t_from, x), alpha_bar(self.reference, t_to, x)
        x0 = (x - (1 - ab_from).sqrt() * eps) / ab_from.sqrt()
        return ab_to.sqrt() * x0 + (1 - ab_to).sqrt() * eps

    def reconstruct(self, images: torch.Tensor, seeds: torch.Tensor) -> torch.Tensor:
        ts = self._timesteps()
        x = images.float()
        for t_from, t_to in zip(ts[:-1], ts[1:]):
            x = self._ddim_move(x, t_from, t_to)
        for t_from, t_to in zip(ts[:0:-1], ts[-2::-1]):
            x = self._ddim_move(x, t_from, t_to)
        return x
