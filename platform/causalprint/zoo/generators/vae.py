"""A convolutional VAE (Kingma & Welling 2014): strided-conv encoder, transposed-conv decoder, prior samples."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from causalprint.progress import ProgressLogger
from causalprint.zoo.base import GeneratorFamily, GeneratorSpec, minibatches, seeded_noise


class _Encoder(nn.Module):
    def __init__(self, image_size: int, width: int, z_dim: int) -> None:
        super().__init__()
        stages = int(math.log2(image_size // 4))
        layers: list[nn.Module] = []
        ch_in = 3
        for i in range(stages):
            ch_out = width * 2**i
            layers += [nn.Conv2d(ch_in, ch_out, 4, 2, 1), nn.BatchNorm2d(ch_out), nn.LeakyReLU(0.2)]
            ch_in = ch_out
        self.body = nn.Sequential(*layers, nn.Flatten())
        self.head = nn.Linear(ch_in * 16, 2 * z_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.head(self.body(x)).chunk(2, dim=1)
        return mu, logvar.clamp(-10, 10)


class _Decoder(nn.Module):
    def __init__(self, image_size: int, width: int, z_dim: int) -> None:
        super().__init__()
        stages = int(math.log2(image_size // 4))
        ch = width * 2 ** (stages - 1)
        self.ch = ch
        self.fc = nn.Linear(z_dim, ch * 16)
        layers: list[nn.Module] = []
        for _ in range(stages - 1, 0, -1):
            layers += [nn.ConvTranspose2d(ch, ch // 2, 4, 2, 1), nn.BatchNorm2d(ch // 2), nn.ReLU()]
            ch //= 2
        layers += [nn.ConvTranspose2d(ch, 3, 4, 2, 1), nn.Tanh()]
        self.body = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.body(self.fc(z).view(z.shape[0], self.ch, 4, 4))


class ConvVAE(GeneratorFamily):
    """Gaussian VAE; ``options.beta`` weights the KL term, ``options.z_dim`` sizes the latent."""

    family = "vae"

    def __init__(self, spec: GeneratorSpec, image_size: int) -> None:
        super().__init__(spec, image_size)
        self.z_dim = int(spec.option("z_dim", 64))
        self.encoder = _Encoder(image_size, spec.width, self.z_dim)
        self.decoder = _Decoder(image_size, spec.width, self.z_dim)

    def modules(self) -> dict[str, nn.Module]:
        return {"encoder": self.encoder, "decoder": self.decoder}

    def sampling_modules(self) -> list[str]:
        return ["decoder"]

    def fit(self, images: torch.Tensor, progress: ProgressLogger) -> dict[str, float]:
        beta = float(self.spec.option("beta", 1.0))
        params = list(self.encoder.parameters()) + list(self.decoder.parameters())
        for module in (self.encoder, self.decoder):
            module.to(images.device).train()
        opt = torch.optim.Adam(params, lr=self.spec.lr or 1e-3)
        gen = torch.Generator().manual_seed(self.spec.seed + 3)
        batches = minibatches(images, self.spec.batch_size, seed=self.spec.seed)
        ema = None
        for _ in range(self.spec.train_steps):
            x = next(batches)
            mu, logvar = self.encoder(x)
            # Reparameterisation trick (their eq. 10), with seeded noise for reproducibility.
            z = mu + torch.exp(0.5 * logvar) * torch.randn(mu.shape, generator=gen).to(x.device)
            recon = self.decoder(z)
            rec = F.mse_loss(recon, x, reduction="sum") / x.shape[0]
            kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp()) / x.shape[0]
            loss = rec + beta * kl
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            ema = loss.item() if ema is None else 0.98 * ema + 0.02 * loss.item()
            progress.update(1, loss=ema)
        self.eval()
        return {"loss": float(ema or 0.0)}

    @torch.no_grad()
    def sample(self, n: int, seed: int, batch_size: int = 256) -> torch.Tensor:
        self.eval()
        device = next(self.decoder.parameters()).device
        z = seeded_noise((n, self.z_dim), seed).to(device)
        chunks = [self.decoder(chunk).cpu() for chunk in z.split(batch_size)]
        return torch.cat(chunks).clamp(-1, 1) if chunks else torch.zeros((0, 3, self.image_size, self.image_size))
