"""DCGAN (Radford, Metz & Chintala, ICLR 2016): transposed convolutions up, strided convolutions down."""

from __future__ import annotations

from torch import nn

from causalprint.zoo.base import GeneratorSpec
from causalprint.zoo.generators.gan_training import (
    GANFamily,
    GANObjective,
    NonSaturatingLoss,
    channels,
    feature_resolutions,
)


def _generator(z_dim: int, width: int, image_size: int) -> nn.Sequential:
    """z -> 4x4 by a 4x4 transposed conv, then x2 transposed convs with BN + ReLU; tanh output."""
    ch = [channels(width, r) for r in feature_resolutions(image_size)]
    layers: list[nn.Module] = [
        nn.Unflatten(1, (z_dim, 1, 1)),
        nn.ConvTranspose2d(z_dim, ch[0], 4, 1, 0, bias=False),
        nn.BatchNorm2d(ch[0]),
        nn.ReLU(inplace=True),
    ]
    for c_in, c_out in zip(ch, ch[1:]):
        layers += [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]
    layers += [nn.ConvTranspose2d(ch[-1], 3, 4, 2, 1), nn.Tanh()]
    return nn.Sequential(*layers)


def _discriminator(width: int, image_size: int) -> nn.Sequential:
    """Strided 4x4 convs with LeakyReLU(0.2), BN on all but the first, to a single logit."""
    ch = [channels(width, r) for r in reversed(feature_resolutions(image_size))]
    layers: list[nn.Module] = [nn.Conv2d(3, ch[0], 4, 2, 1), nn.LeakyReLU(0.2, inplace=True)]
    for c_in, c_out in zip(ch, ch[1:]):
        layers += [nn.Conv2d(c_in, c_out, 4, 2, 1, bias=False), nn.BatchNorm2d(c_out), nn.LeakyReLU(0.2, inplace=True)]
    layers += [nn.Conv2d(ch[-1], 1, 4, 1, 0), nn.Flatten()]
    return nn.Sequential(*layers)


def _dcgan_init(module: nn.Module) -> None:
    # Radford 2016, section 4: weights from N(0, 0.02); BN scales around 1.
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


class DCGAN(GANFamily):
    """Deep convolutional GAN with the non-saturating loss and Adam(2e-4, 0.5, 0.999), as in Radford 2016."""

    def __init__(self, spec: GeneratorSpec, image_size: int) -> None:
        super().__init__(spec, image_size)
        self.generator = _generator(self.z_dim, spec.width, image_size)
        self.discriminator = _discriminator(spec.width, image_size)
        self.generator.apply(_dcgan_init)
        self.discriminator.apply(_dcgan_init)

    def objective(self) -> GANObjective:
        return NonSaturatingLoss()
