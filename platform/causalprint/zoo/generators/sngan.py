"""SNGAN (Miyato et al., ICLR 2018): spectrally normalised critic, hinge loss; sub-pixel upsampling generator.

The generator upsamples by pixel shuffle (Shi et al., CVPR 2016) instead of transposed convolutions, so its
x2 stages leave a different periodic trace from DCGAN's, which is what the zoo wants.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from causalprint.zoo.base import GeneratorSpec
from causalprint.zoo.generators.gan_training import GANFamily, GANObjective, HingeLoss, channels, feature_resolutions


class _Generator(nn.Module):
    """z -> linear -> 4x4, then per x2 stage: 3x3 conv to 4x channels, pixel shuffle, BN, ReLU; tanh."""

    def __init__(self, z_dim: int, width: int, image_size: int) -> None:
        super().__init__()
        ch = [channels(width, r) for r in feature_resolutions(image_size)]
        self.c0 = ch[0]
        self.project = nn.Linear(z_dim, 16 * ch[0])
        layers: list[nn.Module] = [nn.BatchNorm2d(ch[0]), nn.ReLU(inplace=True)]
        for c_in, c_out in zip(ch, ch[1:]):
            layers += [nn.Conv2d(c_in, 4 * c_out, 3, 1, 1), nn.PixelShuffle(2), nn.BatchNorm2d(c_out), nn.ReLU(True)]
        # The last stage shuffles straight to RGB: each output pixel's 2x2 phase has its own filter.
        layers += [nn.Conv2d(ch[-1], 4 * 3, 3, 1, 1), nn.PixelShuffle(2), nn.Tanh()]
        self.body = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.body(self.project(z).view(z.shape[0], self.c0, 4, 4))


def _discriminator(width: int, image_size: int) -> nn.Sequential:
    """The "standard CNN" critic of Miyato 2018 (Table 3) shrunk: per stage a 4x4 stride-2 conv and a 3x3
    conv, LeakyReLU(0.1), every layer spectrally normalised (section 2.1)."""
    ch = [channels(width, r) for r in reversed(feature_resolutions(image_size))]
    first = channels(width, image_size)
    layers: list[nn.Module] = [spectral_norm(nn.Conv2d(3, first, 3, 1, 1)), nn.LeakyReLU(0.1, inplace=True)]
    for c_in, c_out in zip([first, *ch], ch):
        layers += [spectral_norm(nn.Conv2d(c_in, c_out, 4, 2, 1)), nn.LeakyReLU(0.1, inplace=True)]
        layers += [spectral_norm(nn.Conv2d(c_out, c_out, 3, 1, 1)), nn.LeakyReLU(0.1, inplace=True)]
    layers += [nn.Flatten(), spectral_norm(nn.Linear(16 * ch[-1], 1))]
    return nn.Sequential(*layers)


class SNGAN(GANFamily):
    """Spectral-normalisation GAN with the hinge loss and Adam(2e-4, 0.5, 0.999) (Miyato 2018, setting C)."""

    def __init__(self, spec: GeneratorSpec, image_size: int) -> None:
        super().__init__(spec, image_size)
        self.generator = _Generator(self.z_dim, spec.width, image_size)
        self.discriminator = _discriminator(spec.width, image_size)

    def objective(self) -> GANObjective:
        return HingeLoss()
