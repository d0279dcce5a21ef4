"""What the GAN families share: the channel plan, the three adversarial objectives and one training loop.

A family subclasses :class:`GANFamily`, builds ``self.generator`` and ``self.discriminator`` in ``__init__``
and names its objective; fitting, sampling and saving then come from here, so every family is trained the
same way and differs only where its paper differs.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from causalprint.progress import ProgressLogger
from causalprint.zoo.base import GeneratorFamily, GeneratorSpec, minibatches, seeded_noise

# The training noise stream must differ from the minibatch stream, which base.minibatches seeds with spec.seed.
_NOISE_SEED_OFFSET = 0x5EED

DLoss = tuple[Tensor, dict[str, float]]  # the discriminator's loss and extra metrics to report


def feature_resolutions(image_size: int) -> list[int]:
    """Resolutions of the ``log2(image_size / 4)`` x2 stages' inputs: 4, 8, ..., image_size / 2."""
    return [4 * 2**i for i in range(int(math.log2(image_size // 4)))]


def channels(width: int, resolution: int) -> int:
    """Channels at ``resolution``: 4*width at 4x4, halved per doubling (width at 16x16), at least 8.

    Halving with every doubling keeps a 3x3 convolution's cost the same at every resolution, so a model
    does not spend most of its CPU time at its two largest resolutions.
    """
    return max(16 * width // resolution, 8)


def _training_format(device: torch.device) -> torch.memory_format:
    # oneDNN runs these models' steps 10-25 % faster on channels-last tensors on CPU; CUDA keeps its default.
    return torch.channels_last if device.type == "cpu" else torch.contiguous_format


class GANObjective(ABC):
    """An adversarial loss: the discriminator's loss (with any regulariser) and the generator's."""

    @abstractmethod
    def d_loss(self, d: nn.Module, real: Tensor, fake: Tensor, step: int, rng: torch.Generator) -> DLoss:
        """Loss to minimise for ``d`` on a real and a (detached) fake batch, plus extra metrics."""

    @abstractmethod
    def g_loss(self, d: nn.Module, fake: Tensor) -> Tensor:
        """Loss to minimise for the generator that made ``fake``."""


class NonSaturatingLoss(GANObjective):
    """The logistic loss of Goodfellow 2014 with the non-saturating generator loss (as in DCGAN, StyleGAN2).

    ``r1_gamma > 0`` adds the R1 penalty ``gamma/2 * E||grad D(x_real)||^2`` (Mescheder 2018), applied
    lazily every ``r1_every`` steps and scaled by that interval (StyleGAN2, Karras 2020, section 3.1).
    """

    def __init__(self, r1_gamma: float = 0.0, r1_every: int = 4) -> None:
        self.r1_gamma, self.r1_every = r1_gamma, max(int(r1_every), 1)

    def d_loss(self, d: nn.Module, real: Tensor, fake: Tensor, step: int, rng: torch.Generator) -> DLoss:
        use_r1 = self.r1_gamma > 0 and step % self.r1_every == 0
        real = real.detach().requires_grad_(use_r1)
        d_real = d(real)
        # -log sigmoid(D(x)) - log(1 - sigmoid(D(G(z)))), written with softplus for stability.
        loss = F.softplus(-d_real).mean() + F.softplus(d(fake)).mean()
        if not use_r1:
            return loss, {}
        (grad,) = torch.autograd.grad(d_real.sum(), real, create_graph=True)
        r1 = grad.square().flatten(1).sum(1).mean()
        return loss + 0.5 * self.r1_gamma * self.r1_every * r1, {"r1": r1.item()}

    def g_loss(self, d: nn.Module, fake: Tensor) -> Tensor:
        return F.softplus(-d(fake)).mean()  # -log sigmoid(D(G(z)))


class HingeLoss(GANObjective):
    """The hinge loss used with spectral normalisation (Miyato 2018, section 4; Lim & Ye 2017)."""

    def d_loss(self, d: nn.Module, real: Tensor, fake: Tensor, step: int, rng: torch.Generator) -> DLoss:
        d_real, d_fake = d(torch.cat([real, fake])).chunk(2)  # one pass: the critic has no batch statistics
        return F.relu(1.0 - d_real).mean() + F.relu(1.0 + d_fake).mean(), {}

    def g_loss(self, d: nn.Module, fake: Tensor) -> Tensor:
        return -d(fake).mean()


class WassersteinGPLoss(GANObjective):
    """The critic loss of WGAN-GP (Gulrajani 2017, Algorithm 1).

    ``D(x_fake) - D(x_real) + lambda * (||grad D(x_hat)||_2 - 1)^2`` with ``x_hat`` uniform on the segment
    between a real and a fake sample.
    """

    def __init__(self, gp_lambda: float = 10.0) -> None:
        self.gp_lambda = gp_lambda

    def d_loss(self, d: nn.Module, real: Tensor, fake: Tensor, step: int, rng: torch.Generator) -> DLoss:
        eps = torch.rand((real.shape[0], 1, 1, 1), generator=rng).to(real.device)
        x_hat = (eps * real + (1.0 - eps) * fake).requires_grad_(True)
        # The critic has no batch statistics, so one pass over real and fake equals two; the interpolates get
        # their own pass so that the double backward of the penalty covers one batch, not three.
        d_real, d_fake = d(torch.cat([real, fake])).chunk(2)
        (grad,) = torch.autograd.grad(d(x_hat).sum(), x_hat, create_graph=True)
        gp = (grad.flatten(1).norm(dim=1) - 1.0).square().mean()
        wdist = d_real.mean() - d_fake.mean()
        return -wdist + self.gp_lambda * gp, {"gp": gp.item(), "wdist": wdist.item()}

    def g_loss(self, d: nn.Module, fake: Tensor) -> Tensor:
        return -d(fake).mean()


class GANFamily(GeneratorFamily):
    """A GAN generator family: subclasses set ``generator``, ``discriminator`` and the objective.

    Training (:meth:`fit`) runs ``spec.train_steps`` generator steps, each after ``n_critic`` discriminator
    steps; the fake batch of the last discriminator step is reused for the generator step, as in the DCGAN
    reference loop. All randomness comes from generators seeded by ``spec.seed``.
    """

    family = "gan"
    default_lr: ClassVar[float] = 2e-4
    betas: ClassVar[tuple[float, float]] = (0.5, 0.999)
    default_n_critic: ClassVar[int] = 1

    generator: nn.Module
    discriminator: nn.Module

    def __init__(self, spec: GeneratorSpec, image_size: int) -> None:
        super().__init__(spec, image_size)
        self.z_dim = int(spec.option("z_dim", 64))

    @abstractmethod
    def objective(self) -> GANObjective:
        """The adversarial loss this family trains with."""

    def modules(self) -> dict[str, nn.Module]:
        return {"generator": self.generator, "discriminator": self.discriminator}

    def sampling_modules(self) -> list[str]:
        return ["generator"]

    def optimizers(self, lr: float) -> tuple[torch.optim.Optimizer, torch.optim.Optimizer]:
        """Adam for the sampling modules and for the discriminator."""
        mods = self.modules()
        g_params = [p for name in self.sampling_modules() for p in mods[name].parameters()]
        return (
            torch.optim.Adam(g_params, lr=lr, betas=self.betas),
            torch.optim.Adam(self.discriminator.parameters(), lr=lr, betas=self.betas),
        )

    def generate(self, z: Tensor, rng: torch.Generator) -> Tensor:
        """Fake images from latents during training; ``rng`` feeds any further noise inputs."""
        return self.generator(z)

    def render(self, z: Tensor, seed: int, start: int) -> Tensor:
        """Images from latents when sampling; rows are images ``start, start+1, ...`` of draw ``seed``."""
        return self.generator(z)

    def device(self) -> torch.device:
        """Where the generator's weights are."""
        return next(self.generator.parameters()).device

    def fit(self, images: Tensor, progress: ProgressLogger) -> dict[str, float]:
        spec, device = self.spec, images.device
        fmt = _training_format(device)
        for module in self.modules().values():
            # Module.to takes memory_format at run time; torch's overloads of it leave the keyword out.
            module.to(device, memory_format=fmt).train()  # type: ignore[call-overload]
        d = self.discriminator
        opt_g, opt_d = self.optimizers(spec.lr or self.default_lr)
        objective = self.objective()
        n_critic = max(int(spec.option("n_critic", self.default_n_critic)), 1)
        batches = minibatches(images, spec.batch_size, seed=spec.seed)
        rng = torch.Generator().manual_seed(spec.seed + _NOISE_SEED_OFFSET)
        metrics: dict[str, float] = {}
        for step in range(spec.train_steps):
            for k in range(n_critic):
                real = next(batches).to(device, memory_format=fmt)
                z = torch.randn((real.shape[0], self.z_dim), generator=rng).to(device)
                with torch.set_grad_enabled(k == n_critic - 1):  # only the last fake is reused for G
                    fake = self.generate(z, rng)
                loss_d, extra = objective.d_loss(d, real, fake.detach(), step, rng)
                opt_d.zero_grad(set_to_none=True)
                loss_d.backward()
                opt_d.step()
            d.requires_grad_(False)  # the generator step needs gradients through D, not for D's weights
            loss_g = objective.g_loss(d, fake)
            opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            opt_g.step()
            d.requires_grad_(True)
            metrics = {"loss_g": loss_g.item(), "loss_d": loss_d.item(), **extra}
            progress.update(1, **metrics)
        for module in self.modules().values():  # sampling runs in one layout, so a reload samples bit-identically
            module.to(memory_format=torch.contiguous_format)  # type: ignore[call-overload]  # as above
        return metrics

    @torch.no_grad()
    def sample(self, n: int, seed: int, batch_size: int = 256) -> Tensor:
        self.eval()
        device = self.device()
        z = seeded_noise((n, self.z_dim), seed)
        out = torch.empty((n, 3, self.image_size, self.image_size))
        for start in range(0, n, batch_size):
            zb = z[start : start + batch_size].to(device)
            out[start : start + zb.shape[0]] = self.render(zb, seed, start).clamp(-1.0, 1.0).float().cpu()
        return out
