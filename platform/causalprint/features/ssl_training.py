"""A small self-supervised encoder of residuals, trained with SimCLR's NT-Xent objective (Chen et al., ICML 2020).

Two augmented views of each residual must embed closer to each other than to any other residual of the batch.
The augmentations only move pixels around or add a little noise (flips, 90-degree rotations, pad-and-crop
shifts, gaussian noise): blur, resizing and colour jitter are left out because they would erase the
high-frequency, colour-correlated traces the encoder is meant to keep. The projection head used by the loss is
dropped after training, as in SimCLR; the encoder's pooled output is the embedding.

A trained encoder is a folder: ``config.json`` + ``model.safetensors`` (never a pickle).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from pydantic import Field
from safetensors.torch import load_file, save_file
from torch import nn

from causalprint.config import StrictModel
from causalprint.progress import ProgressLogger

FORMAT = "causalprint-ssl-encoder/1"


class SSLEncoderConfig(StrictModel):
    """Shape of the encoder. ``input_scale`` divides the residual first; training sets it to the data's std."""

    width: int = Field(default=32, ge=4, description="channels of the full-resolution stem")
    depth: int = Field(default=3, ge=1, description="stride-2 stages after the stem")
    embed_dim: int = Field(default=128, ge=1)
    input_scale: float = Field(default=1.0, gt=0)


class SSLTrainConfig(StrictModel):
    """Training settings for :func:`train_ssl_encoder`."""

    encoder: SSLEncoderConfig = SSLEncoderConfig()
    proj_dim: int = Field(default=64, ge=1, description="output of the projection head the loss sees")
    steps: int = Field(default=500, ge=1)
    batch_size: int = Field(default=256, ge=2)
    lr: float = Field(default=1e-3, gt=0)
    weight_decay: float = Field(default=1e-4, ge=0)
    temperature: float = Field(default=0.2, gt=0)
    max_shift: int = Field(default=4, ge=0, description="pixels of zero-padded random shift")
    noise_std: float = Field(default=0.05, ge=0, description="gaussian noise, in units of input_scale")
    seed: int = 0


def _norm(channels: int) -> nn.GroupNorm:
    # GroupNorm, not BatchNorm: an image's embedding must not depend on the rest of its batch.
    return nn.GroupNorm(min(8, channels), channels)


class SSLEncoder(nn.Module):
    """Conv encoder ``[N, 3, S, S]`` -> ``[N, embed_dim]``: a stride-1 stem (keeps pixel-level traces), ``depth``
    stride-2 stages, global average pooling and a linear layer."""

    def __init__(self, config: SSLEncoderConfig) -> None:
        super().__init__()
        self.config = config
        w = config.width
        layers: list[nn.Module] = [nn.Conv2d(3, w, 3, padding=1), _norm(w), nn.ReLU()]
        for i in range(config.depth):
            c_in, c_out = w * 2**i, w * 2 ** (i + 1)
            layers += [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1), _norm(c_out), nn.ReLU()]
            layers += [nn.Conv2d(c_out, c_out, 3, padding=1), _norm(c_out), nn.ReLU()]
        self.features = nn.Sequential(*layers)
        self.out = nn.Linear(w * 2**config.depth, config.embed_dim)

    def forward(self, residuals: torch.Tensor) -> torch.Tensor:
        h = self.features(residuals / self.config.input_scale)
        return self.out(h.mean(dim=(2, 3)))


def augment(x: torch.Tensor, config: SSLTrainConfig, gen: torch.Generator) -> torch.Tensor:
    """One random view per image of ``x`` (``[N, 3, S, S]``, square); random draws come from the CPU ``gen``."""
    n, _, s, _ = x.shape
    out = x.clone()
    # 1. Flips and 90-degree rotations: the dihedral group keeps every pixel value and neighbourhood.
    hflip = torch.rand(n, generator=gen) < 0.5
    out[hflip.to(x.device)] = out[hflip.to(x.device)].flip(-1)
    turns = torch.randint(0, 4, (n,), generator=gen)
    for k in range(1, 4):
        sel = (turns == k).to(x.device)
        out[sel] = torch.rot90(out[sel], k, dims=(2, 3))
    # 2. Pad-and-crop shift: the residual moves by up to max_shift pixels, with zeros entering at the border.
    p = config.max_shift
    if p > 0:
        padded = F.pad(out, (p, p, p, p))
        oy = torch.randint(0, 2 * p + 1, (n, 1), generator=gen)
        ox = torch.randint(0, 2 * p + 1, (n, 1), generator=gen)
        rows = (oy + torch.arange(s)).to(x.device)
        cols = (ox + torch.arange(s)).to(x.device)
        batch = torch.arange(n, device=x.device)[:, None, None]
        out = padded[batch, :, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)
    # 3. Small gaussian noise, scaled to the data, so the encoder cannot key on exact pixel values.
    if config.noise_std > 0:
        noise = torch.randn(out.shape, generator=gen).to(x.device)
        out = out + noise * (config.noise_std * config.encoder.input_scale)
    return out.contiguous()


def nt_xent_loss(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> torch.Tensor:
    """NT-Xent (SimCLR eq. 1) over ``2N`` views: view ``i`` must pick its partner among the other ``2N - 1``."""
    z = F.normalize(torch.cat((z1, z2)), dim=1)
    n = z1.shape[0]
    sim = (z @ z.T) / temperature
    sim = sim.masked_fill(torch.eye(2 * n, dtype=torch.bool, device=z.device), float("-inf"))
    partner = torch.cat((torch.arange(n, 2 * n), torch.arange(n))).to(z.device)
    return F.cross_entropy(sim, partner)


def train_ssl_encoder(
    residuals: torch.Tensor,
    config: SSLTrainConfig,
    device: str | torch.device = "cpu",
    on_step: Callable[[int, float], None] | None = None,
) -> SSLEncoder:
    """Train an encoder on ``residuals`` ``[N, 3, S, S]`` for ``config.steps`` steps; returns it in eval mode.

    Reproducible from ``config.seed`` on a given device. ``on_step(step, loss)`` is called after every step.
    """
    if residuals.ndim != 4 or residuals.shape[1] != 3 or residuals.shape[2] != residuals.shape[3]:
        raise ValueError(f"expected square residuals [N, 3, S, S], got {list(residuals.shape)}")
    if residuals.shape[0] < 2:
        raise ValueError(f"need at least 2 residuals for a contrastive batch, got {residuals.shape[0]}")
    device = torch.device(device)
    data = residuals.detach().float()
    scale = float(data.std()) or 1.0
    config = config.model_copy(update={"encoder": config.encoder.model_copy(update={"input_scale": scale})})

    with torch.random.fork_rng(devices=[]):  # seed the init without touching the caller's global RNG
        torch.manual_seed(config.seed)
        encoder = SSLEncoder(config.encoder)
        head = nn.Sequential(
            nn.Linear(config.encoder.embed_dim, config.encoder.embed_dim),
            nn.ReLU(),
            nn.Linear(config.encoder.embed_dim, config.proj_dim),
        )
    encoder.to(device).train()
    head.to(device).train()
    params = [*encoder.parameters(), *head.parameters()]
    opt = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    gen = torch.Generator().manual_seed(config.seed)
    batch_size = min(config.batch_size, data.shape[0])
    progress = ProgressLogger("ssl encoder", config.steps, unit="step")
    order = torch.randperm(data.shape[0], generator=gen)
    cursor = 0
    for step in range(config.steps):
        if cursor + batch_size > len(order):  # epochs without replacement
            order, cursor = torch.randperm(data.shape[0], generator=gen), 0
        batch = data[order[cursor : cursor + batch_size]].to(device)
        cursor += batch_size
        z1 = head(encoder(augment(batch, config, gen)))
        z2 = head(encoder(augment(batch, config, gen)))
        loss = nt_xent_loss(z1, z2, config.temperature)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        value = float(loss.detach())
        progress.update(1, loss=value)
        if on_step is not None:
            on_step(step, value)
    return encoder.eval()


def save_ssl_encoder(encoder: SSLEncoder, directory: str | Path) -> Path:
    """Write ``config.json`` and ``model.safetensors``; returns the directory."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().contiguous().cpu() for k, v in encoder.state_dict().items()}
    save_file(tensors, str(directory / "model.safetensors"))
    config = {"format": FORMAT, "encoder": encoder.config.model_dump()}
    (directory / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True))
    return directory


def load_ssl_encoder(directory: str | Path, device: str | torch.device = "cpu") -> SSLEncoder:
    """The encoder saved by :func:`save_ssl_encoder`, in eval mode on ``device``."""
    directory = Path(directory)
    config = json.loads((directory / "config.json").read_text())
    if config.get("format") != FORMAT:
        raise ValueError(f"{directory} is not an SSL encoder folder (format {config.get('format')!r}, want {FORMAT!r})")
    encoder = SSLEncoder(SSLEncoderConfig.model_validate(config["encoder"]))
    encoder.load_state_dict(load_file(str(directory / "model.safetensors")), strict=True)
    return encoder.to(device).eval()
