"""A small StyleGAN2 (Karras et al., CVPR 2020): mapping network, modulated convolutions, noise, skip outputs.

Kept from the paper: the z -> w mapping MLP (with a 100x lower learning rate), a learned constant 4x4 input,
3x3 convolutions modulated by per-layer styles and weight-demodulated, per-pixel noise with a learned
strength, toRGB outputs at every resolution summed through upsampling ("skip" generator), equalised learning
rate, the non-saturating logistic loss with lazy R1, and Adam(0.002, 0, 0.99). Left out for CPU cost: the
FIR blur filters (plain bilinear upsampling instead), style mixing, path-length regularisation and truncation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from causalprint.zoo.base import GeneratorSpec
from causalprint.zoo.generators.gan_training import (
    GANFamily,
    GANObjective,
    NonSaturatingLoss,
    channels,
    feature_resolutions,
)

_SQRT2 = math.sqrt(2.0)


def _lrelu(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, 0.2) * _SQRT2  # gain sqrt(2) keeps the activations' scale (Karras 2018)


def _up(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)


class _EqualLinear(nn.Module):
    """Linear layer with equalised learning rate: N(0,1) weights scaled at run time (Karras 2018, 4.1)."""

    def __init__(self, c_in: int, c_out: int, bias_init: float = 0.0, lr_mul: float = 1.0) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(c_out, c_in) / lr_mul)
        self.bias = nn.Parameter(torch.full((c_out,), float(bias_init) / lr_mul))
        self.scale, self.lr_mul = lr_mul / math.sqrt(c_in), lr_mul

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.scale, self.bias * self.lr_mul)


class _EqualConv(nn.Module):
    """Conv layer with equalised learning rate, same padding."""

    def __init__(self, c_in: int, c_out: int, kernel: int, bias: bool = True) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(c_out, c_in, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(c_out)) if bias else None
        self.scale = 1.0 / math.sqrt(c_in * kernel * kernel)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.scale, self.bias, padding=self.weight.shape[-1] // 2)


class _ModConv(nn.Module):
    """Modulated convolution (Karras 2020, eq. 1-3), optionally demodulated, optionally after x2 upsampling.

    Scaling the input channels by the style, convolving with the shared weight and scaling the output
    channels by the demodulation factor equals convolving with the per-sample weight ``w''`` (the paper's
    non-fused form), and runs as one ordinary convolution for the whole batch.
    """

    def __init__(self, c_in: int, c_out: int, kernel: int, w_dim: int, demodulate: bool, up: bool) -> None:
        super().__init__()
        self.affine = _EqualLinear(w_dim, c_in, bias_init=1.0)  # styles start at 1
        self.weight = nn.Parameter(torch.randn(c_out, c_in, kernel, kernel))
        self.scale = 1.0 / math.sqrt(c_in * kernel * kernel)
        self.demodulate, self.up = demodulate, up

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        style = self.affine(w)  # s_i, [B, c_in]
        weight = self.weight * self.scale
        x = x * style[:, :, None, None]  # w'_ijk = s_i * w_ijk, moved onto the input
        if self.up:
            x = _up(x)
        y = F.conv2d(x, weight, padding=weight.shape[-1] // 2)
        if self.demodulate:  # w''_ijk = w'_ijk / sqrt(sum_ik w'_ijk^2 + eps)
            sq = weight.square().sum((2, 3))  # [c_out, c_in]
            y = y * torch.rsqrt(style.square() @ sq.t() + 1e-8)[:, :, None, None]
        return y


class _StyledLayer(nn.Module):
    """Modulated 3x3 conv, plus per-pixel noise times a strength (learned unless fixed), plus bias, then leaky
    ReLU."""

    def __init__(
        self, c_in: int, c_out: int, w_dim: int, up: bool, noise_init: float = 0.0, noise_learned: bool = True
    ) -> None:
        super().__init__()
        self.conv = _ModConv(c_in, c_out, 3, w_dim, demodulate=True, up=up)
        # StyleGAN2 starts at 0 and learns it.
        self.noise_strength = nn.Parameter(torch.tensor(float(noise_init)), requires_grad=noise_learned)
        self.bias = nn.Parameter(torch.zeros(c_out))

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        return _lrelu(self.conv(x, w) + self.noise_strength * noise + self.bias[:, None, None])


class _ToRGB(nn.Module):
    def __init__(self, c_in: int, w_dim: int) -> None:
        super().__init__()
        self.conv = _ModConv(c_in, 3, 1, w_dim, demodulate=False, up=False)
        self.bias = nn.Parameter(torch.zeros(3))

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return self.conv(x, w) + self.bias[:, None, None]


class _Mapping(nn.Sequential):
    """Normalise z to the unit second moment, then an MLP to w (Karras 2019, section 2)."""

    def __init__(self, z_dim: int, w_dim: int, n_layers: int) -> None:
        dims = [z_dim] + [w_dim] * n_layers
        super().__init__(*(_EqualLinear(a, b, lr_mul=0.01) for a, b in zip(dims, dims[1:])))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = z * torch.rsqrt(z.square().mean(1, keepdim=True) + 1e-8)
        for layer in self:
            x = _lrelu(layer(x))
        return x


def layer_resolutions(image_size: int) -> list[int]:
    """Output resolution of each styled layer, in order: 4x4 first, then two per larger resolution."""
    return [4] + [r for r in [*feature_resolutions(image_size), image_size][1:] for _ in range(2)]


class _Synthesis(nn.Module):
    """Constant 4x4 input, one styled layer at 4x4, two per larger resolution, toRGB at each (skip)."""

    def __init__(
        self,
        w_dim: int,
        width: int,
        image_size: int,
        noise_init: float | Sequence[float] = 0.0,
        noise_learned: bool = True,
    ) -> None:
        super().__init__()
        res = [*feature_resolutions(image_size), image_size]
        ch = [channels(width, r) for r in res]
        # Each styled layer reads one noise map at its output resolution.
        self.noise_sizes = layer_resolutions(image_size)
        self.noise_numel = sum(r * r for r in self.noise_sizes)
        n_layers = len(self.noise_sizes)
        if isinstance(noise_init, (int, float)):
            noise_init = [float(noise_init)] * n_layers
        elif len(noise_init) != n_layers:
            raise ValueError(
                f"noise_init names {len(noise_init)} strengths; a {image_size}x{image_size} StyleGAN "
                f"has {n_layers} styled layers (4x4 first, two per larger resolution)"
            )
        self.const = nn.Parameter(torch.randn(ch[0], 4, 4))
        self.layers = nn.ModuleList([_StyledLayer(ch[0], ch[0], w_dim, False, noise_init[0], noise_learned)])
        self.to_rgb = nn.ModuleList([_ToRGB(ch[0], w_dim)])
        for i, (c_in, c_out) in enumerate(zip(ch, ch[1:])):
            self.layers.extend(
                [
                    _StyledLayer(c_in, c_out, w_dim, True, noise_init[2 * i + 1], noise_learned),
                    _StyledLayer(c_out, c_out, w_dim, False, noise_init[2 * i + 2], noise_learned),
                ]
            )
            self.to_rgb.append(_ToRGB(c_out, w_dim))

    def split_noise(self, flat: torch.Tensor) -> list[torch.Tensor]:
        """Cut per-sample noise ``[B, noise_numel]`` into the layers' ``[B, 1, r, r]`` maps."""
        parts = flat.split([r * r for r in self.noise_sizes], dim=1)
        return [p.view(-1, 1, r, r) for p, r in zip(parts, self.noise_sizes)]

    def forward(self, w: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        maps = self.split_noise(noise)
        x = self.const.expand(w.shape[0], -1, -1, -1)
        x = self.layers[0](x, w, maps[0])
        img = self.to_rgb[0](x, w)
        for i, to_rgb in enumerate(self.to_rgb[1:]):
            x = self.layers[2 * i + 1](x, w, maps[2 * i + 1])
            x = self.layers[2 * i + 2](x, w, maps[2 * i + 2])
            img = _up(img) + to_rgb(x, w)
        return img


class _DBlock(nn.Module):
    """Residual down block, (h + skip) / sqrt(2) (Karras 2020, section 4.1); pooling before the second conv."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv1, self.conv2 = _EqualConv(c_in, c_in, 3), _EqualConv(c_in, c_out, 3)
        self.skip = _EqualConv(c_in, c_out, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = _lrelu(self.conv2(F.avg_pool2d(_lrelu(self.conv1(x)), 2)))
        return (h + self.skip(F.avg_pool2d(x, 2))) / _SQRT2


class _Discriminator(nn.Module):
    """fromRGB, residual down blocks to 4x4, minibatch standard deviation (Karras 2018), conv, two FCs."""

    def __init__(self, width: int, image_size: int) -> None:
        super().__init__()
        res = list(reversed([*feature_resolutions(image_size), image_size]))
        ch = [channels(width, r) for r in res]
        self.from_rgb = _EqualConv(3, ch[0], 1)
        self.blocks = nn.Sequential(*(_DBlock(c_in, c_out) for c_in, c_out in zip(ch, ch[1:])))
        self.conv = _EqualConv(ch[-1] + 1, ch[-1], 3)
        self.fc = _EqualLinear(16 * ch[-1], ch[-1])
        self.out = _EqualLinear(ch[-1], 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(_lrelu(self.from_rgb(x)))
        group = math.gcd(4, x.shape[0])  # statistics over groups of up to 4 samples
        y = x.reshape(group, -1, *x.shape[1:])
        std = torch.sqrt((y - y.mean(0)).square().mean(0) + 1e-8)  # elementwise: std(0) is slow on channels-last
        stat = std.mean((1, 2, 3)).view(-1, 1, 1, 1).repeat(group, 1, *x.shape[2:])
        x = _lrelu(self.conv(torch.cat([x, stat], 1)))
        return self.out(_lrelu(self.fc(x.flatten(1))))


def _image_noise_seed(seed: int, index: int) -> int:
    # Noise of image `index` of draw `seed`, independent of the sampling batch size.
    return (seed * 0x9E3779B97F4A7C15 + index) % 2**64


class StyleGANLite(GANFamily):
    """StyleGAN2-style generator (mapping + synthesis) with a residual discriminator; see the module docs.

    Options: ``mapping_layers`` (2) and ``r1_gamma`` (0.01), the CIFAR-10 values of Karras et al. 2020b (ADA);
    ``r1_every`` (16, the lazy interval of Karras 2020); ``noise_init`` (0, as in the paper), where the
    noise strengths start (one value for every layer, or one per styled layer), and ``noise_learned`` (true, as
    in the paper). The strengths a StyleGAN learns depend on its training images, so instances differ in how
    much per-pixel noise, and at which resolution, reaches the image; a fixed strength makes one with noise
    where its data would not put it. ``noise_random_max`` draws the strengths per image instead, in training
    and sampling alike: each styled layer carries noise with probability ``noise_random_p`` (0.5), at a
    strength uniform in [0, ``noise_random_max``). One such instance shows the architecture head StyleGANs with
    noise at any layer and strength, where fixed strengths show one placement each.
    """

    default_lr = 2e-3
    betas = (0.0, 0.99)
    generator: _Synthesis

    def __init__(self, spec: GeneratorSpec, image_size: int) -> None:
        super().__init__(spec, image_size)
        n_map = int(spec.option("mapping_layers", 2))
        self.mapping = _Mapping(self.z_dim, self.z_dim, n_map)
        self.noise_random = _noise_random(spec.options)
        if self.noise_random is None:
            noise_init = spec.options.get("noise_init", 0.0)
            if isinstance(noise_init, str):
                raise TypeError(f"noise_init must be a number or a list of numbers, got {noise_init!r}")
            noise_learned = bool(spec.options.get("noise_learned", True))
        else:  # strengths of 1 that stay fixed: the drawn per-image strengths scale the noise maps themselves
            noise_init, noise_learned = 1.0, False
        self.generator = _Synthesis(self.z_dim, spec.width, image_size, noise_init, noise_learned)
        self.discriminator = _Discriminator(spec.width, image_size)

    def modules(self) -> dict[str, nn.Module]:
        return {"mapping": self.mapping, **super().modules()}

    def sampling_modules(self) -> list[str]:
        return ["mapping", "generator"]

    def objective(self) -> GANObjective:
        return NonSaturatingLoss(float(self.spec.option("r1_gamma", 0.01)), int(self.spec.option("r1_every", 16)))

    def _noise(self, n: int, rng: torch.Generator) -> torch.Tensor:
        """``n`` flat noise vectors from ``rng``; under ``noise_random_max`` each layer's map is scaled by a
        strength drawn per image."""
        noise = torch.randn((n, self.generator.noise_numel), generator=rng)
        if self.noise_random is None:
            return noise
        high, p = self.noise_random
        n_layers = len(self.generator.noise_sizes)
        on = torch.rand((n, n_layers), generator=rng) < p
        strengths = on * torch.rand((n, n_layers), generator=rng) * high
        numels = torch.tensor([r * r for r in self.generator.noise_sizes])
        return noise * strengths.repeat_interleave(numels, dim=1)

    def generate(self, z: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
        return self.generator(self.mapping(z), self._noise(z.shape[0], rng).to(z.device))

    def render(self, z: torch.Tensor, seed: int, start: int) -> torch.Tensor:
        noise = torch.cat(
            [
                self._noise(1, torch.Generator().manual_seed(_image_noise_seed(seed, start + i)))
                for i in range(z.shape[0])
            ]
        )
        return self.generator(self.mapping(z), noise.to(z.device))


def _noise_random(options: dict) -> tuple[float, float] | None:
    """``(max, p)`` from the ``noise_random_max`` / ``noise_random_p`` options, checked; None when absent."""
    if "noise_random_max" not in options:
        if "noise_random_p" in options:
            raise ValueError("noise_random_p needs noise_random_max")
        return None
    if "noise_init" in options or "noise_learned" in options:
        raise ValueError(
            "noise_random_max draws the noise strengths per image; it excludes noise_init and noise_learned"
        )
    try:
        high, p = float(options["noise_random_max"]), float(options.get("noise_random_p", 0.5))
    except (TypeError, ValueError):
        raise ValueError(
            "noise_random_max and noise_random_p are numbers, got "
            f"{options['noise_random_max']!r}, {options.get('noise_random_p', 0.5)!r}"
        ) from None
    if not (0 < high < math.inf) or not 0 < p <= 1:
        raise ValueError(
            f"noise_random needs a finite noise_random_max > 0 and 0 < noise_random_p <= 1, got {high}, {p}"
        )
    return high, p
