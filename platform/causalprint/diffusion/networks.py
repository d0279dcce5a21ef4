"""Compact diffusers networks sized for CPU: a UNet2DModel without attention and a 2x AutoencoderKL."""

from __future__ import annotations

from diffusers import AutoencoderKL, UNet2DModel

LATENT_CHANNELS = 4


def small_unet(sample_size: int, channels: int, width: int, levels: int) -> UNet2DModel:
    """``levels`` resolutions (channels width, 2*width, 2*width, ...), one ResNet block each, no attention."""
    widths = tuple(width * min(2**i, 2) for i in range(levels))
    return UNet2DModel(
        sample_size=sample_size,
        in_channels=channels,
        out_channels=channels,
        layers_per_block=1,
        block_out_channels=widths,
        down_block_types=("DownBlock2D",) * levels,
        up_block_types=("UpBlock2D",) * levels,
        norm_num_groups=min(8, width),
    )


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
