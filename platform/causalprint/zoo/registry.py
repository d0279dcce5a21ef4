"""The generator families the zoo can train, by architecture name."""

from __future__ import annotations

from causalprint.registry import Registry
from causalprint.zoo.base import GeneratorFamily, GeneratorSpec

GENERATORS: Registry[type[GeneratorFamily]] = Registry(
    "generator architecture",
    {
        "dcgan": "causalprint.zoo.generators.dcgan:DCGAN",
        "wgan_gp": "causalprint.zoo.generators.wgan_gp:ResNetWGANGP",
        "stylegan": "causalprint.zoo.generators.stylegan:StyleGANLite",
        "sngan": "causalprint.zoo.generators.sngan:SNGAN",
        "ddpm": "causalprint.zoo.generators.pixel_diffusion:DDPMGenerator",
        "ddim": "causalprint.zoo.generators.pixel_diffusion:DDIMGenerator",
        "ldm": "causalprint.zoo.generators.latent_diffusion:LatentDiffusion",
        "vae": "causalprint.zoo.generators.vae:ConvVAE",
    },
)


def create_generator(spec: GeneratorSpec, image_size: int) -> GeneratorFamily:
    """Build an untrained generator of ``spec.arch``."""
    return GENERATORS.get(spec.arch)(spec, image_size)
