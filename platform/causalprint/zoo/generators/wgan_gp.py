"""ResNet WGAN-GP (Gulrajani et al., NeurIPS 2017): residual generator and critic, gradient penalty."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from causalprint.zoo.base import GeneratorSpec
from causalprint.zoo.generators.gan_training import (
    GANFamily,
    GANObjective,
    WassersteinGPLoss,
    channels,
    feature_resolutions,
)


class _UpBlock(nn.Module):
    """BN-ReLU-(nearest x2, 3x3 conv)-BN-ReLU-3x3 conv, plus a nearest x2 + 1x1 conv shortcut."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.bn1, self.conv1 = nn.BatchNorm2d(c_in), nn.Conv2d(c_in, c_out, 3, 1, 1)
        self.bn2, self.conv2 = nn.BatchNorm2d(c_out), nn.Conv2d(c_out, c_out, 3, 1, 1)
        self.shortcut = nn.Conv2d(c_in, c_out, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.interpolate(F.relu(self.bn1(x)), scale_factor=2.0, mode="nearest")
        h = self.conv2(F.relu(self.bn2(self.conv1(h))))
        return h + self.shortcut(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class _DownBlock(nn.Module):
    """ReLU-3x3 conv-ReLU-mean pool-3x3 conv, plus a mean pool + 1x1 conv shortcut; no normalisation,
    which the gradient penalty forbids across the batch (Gulrajani 2017, section 4). Pooling before the
    second conv ("MeanPoolConv", their shortcut's order) costs a quarter of convolving first."""

    def __init__(self, c_in: int, c_mid: int, c_out: int, first: bool = False) -> None:
        super().__init__()
        self.first = first
        self.conv1, self.conv2 = nn.Conv2d(c_in, c_mid, 3, 1, 1), nn.Conv2d(c_mid, c_out, 3, 1, 1)
        self.shortcut = nn.Conv2d(c_in, c_out, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(x if self.first else F.relu(x))  # the image itself is not rectified
        h = self.conv2(F.avg_pool2d(F.relu(h), 2))
        return h + self.shortcut(F.avg_pool2d(x, 2))


class _Generator(nn.Module):
    def __init__(self, z_dim: int, width: int, image_size: int) -> None:
        super().__init__()
        res = feature_resolutions(image_size)
        ch = [channels(width, r) for r in [*res, image_size]]
        self.c0 = ch[0]
        self.project = nn.Linear(z_dim, 16 * ch[0])
        self.blocks = nn.Sequential(*(_UpBlock(c_in, c_out) for c_in, c_out in zip(ch, ch[1:])))
        self.to_rgb = nn.Sequential(nn.BatchNorm2d(ch[-1]), nn.ReLU(), nn.Conv2d(ch[-1], 3, 3, 1, 1), nn.Tanh())

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.to_rgb(self.blocks(self.project(z).view(z.shape[0], self.c0, 4, 4)))


class _Critic(nn.Module):
    def __init__(self, width: int, image_size: int) -> None:
        super().__init__()
        ch = [channels(width, r) for r in reversed([*feature_resolutions(image_size), image_size])]
        self.blocks = nn.Sequential(
            _DownBlock(3, ch[0], ch[1], first=True),
            *(_DownBlock(c_in, c_in, c_out) for c_in, c_out in zip(ch[1:], ch[2:])),
        )
        self.head = nn.Linear(ch[-1], 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(F.relu(self.blocks(x)).mean((2, 3)))  # global average pool, then linear


class ResNetWGANGP(GANFamily):
    """WGAN-GP with ResNet generator and critic; lambda = 10, Adam(2e-4, 0, 0.9) as in Gulrajani 2017.

    ``spec.options["n_critic"]`` critic steps per generator step (default 2; the paper used 5, at 2.5x
    the cost).
    """

    betas = (0.0, 0.9)
    default_n_critic = 2

    def __init__(self, spec: GeneratorSpec, image_size: int) -> None:
        super().__init__(spec, image_size)
        self.generator = _Generator(self.z_dim, spec.width, image_size)
        self.discriminator = _Critic(spec.width, image_size)

    def objective(self) -> GANObjective:
        return WassersteinGPLoss(gp_lambda=float(self.spec.option("gp_lambda", 10.0)))
