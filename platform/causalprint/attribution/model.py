"""The causal decoupling model: a VAE that splits a representation into a fingerprint code and a content code.

Causal graph (docs/method.md §1): ``source Y -> fingerprint F -> X <- content C, style S``. The encoder reads a
(standardised) representation ``x`` into ``z_fp`` (carries Y) and ``z_c`` (carries C, S, and no Y); the decoder
rebuilds ``x`` from both. Terms of the loss (docs/method.md §4):

- ``cls``: cross-entropy of the source from ``z_fp``;
- ``rec``: reconstruction of the standardised input;
- ``kl``: KL of both posteriors to N(0, I);
- ``hsic``: HSIC(z_c, onehot(y)) + HSIC(z_c, z_fp), so the content code is independent of the source and of
  the fingerprint;
- ``adv`` (optional): a linear head reads the source from ``z_c`` through gradient reversal;
- ``swap``: counterfactual consistency, do(F = f_A) with C = c_B held fixed: the decoded counterfactual must be
  attributed to A and keep B's content code, and a fingerprint from B's own source must give back x_B.

A model is a folder: ``config.json`` + ``model.safetensors`` (+ ``extras.json``), see :meth:`save_pretrained`.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from causalprint.attribution.losses import grad_reverse, hsic, kl_standard_normal, one_hot
from causalprint.attribution.schedule import Schedule, epoch_lr, set_lr
from causalprint.config import StrictModel

log = logging.getLogger(__name__)

__all__ = [
    "CausalDecoupler",
    "Codes",
    "DecouplerConfig",
    "DecouplerOutput",
    "architecture_names",
    "fit_decoupler",
    "pool_by_architecture",
]

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
EXTRAS_NAME = "extras.json"
FORMAT_VERSION = 1


def architecture_names(architectures: Iterable[str] | None) -> list[str]:
    """The distinct architectures, sorted: the order of architecture indices everywhere (the architecture head's
    outputs, the labels ``-1 - a`` of architecture-only rows). None or empty: ``[]``."""
    return sorted(set(architectures or ()))


def pool_by_architecture(probs: np.ndarray, class_architectures: Sequence[str]) -> np.ndarray:
    """Class probabilities ``[N, K]`` summed over each architecture's classes: ``[N, A]``, columns in the order
    of :func:`architecture_names` (instances of one architecture pool their evidence)."""
    names = architecture_names(class_architectures)
    member = np.zeros((len(class_architectures), len(names)), dtype=probs.dtype)  # [K, A]
    member[np.arange(len(class_architectures)), [names.index(a) for a in class_architectures]] = 1
    return probs @ member


class DecouplerOptions(StrictModel):
    """Shape and loss weights of a :class:`CausalDecoupler` that a job sets (the train preset's ``model``)."""

    fp_dim: int = Field(default=32, ge=1, description="size of the fingerprint code z_fp")
    content_dim: int = Field(default=32, ge=1, description="size of the content/style code z_c")
    hidden: int = Field(default=256, ge=1)
    projection_dim: int | None = Field(
        default=None,
        ge=1,
        description="compress the standardised input onto its first principal components "
        "(fitted on the train rows) before encoding; the decoder reconstructs that projection. None: no projection",
    )
    dropout: float = Field(default=0.0, ge=0.0, lt=1.0)
    head: Literal["cosine", "linear"] = "cosine"
    cosine_scale: float = Field(default=16.0, gt=0, description="logit scale of the cosine head")
    w_cls: float = Field(default=1.0, ge=0)
    w_rec: float = Field(default=1.0, ge=0)
    w_kl: float = Field(default=1e-3, ge=0)
    w_hsic: float = Field(default=10.0, ge=0, description="HSIC values are small (~1e-2): a large weight")
    w_adv: float = Field(default=0.0, ge=0, description="0 disables the adversary (no head is built)")
    w_swap: float = Field(default=1.0, ge=0, description="counterfactual terms: swap_cls + swap_content + swap_rec")
    w_arch: float = Field(
        default=1.0,
        ge=0,
        description="architecture head on z_fp (built when the classes' "
        "architectures are known and at least two differ)",
    )
    hsic_sigma: float | None = Field(default=None, gt=0, description="kernel width; None: median heuristic")


class DecouplerConfig(DecouplerOptions):
    """A :class:`CausalDecoupler`'s whole config: the options and what the data gives (input size, classes and
    their architectures). Frozen; unknown keys are errors."""

    input_dim: int = Field(ge=1)
    num_classes: int = Field(ge=2)
    class_names: list[str] | None = None
    architectures: list[str] | None = Field(
        default=None,
        description="the architecture of each class, in class order (instances of one architecture "
        "share it); None: no architecture head",
    )

    @model_validator(mode="after")
    def _names_match(self) -> DecouplerConfig:
        if self.class_names is not None and len(self.class_names) != self.num_classes:
            raise ValueError(f"class_names has {len(self.class_names)} names but num_classes={self.num_classes}")
        if self.architectures is not None and len(self.architectures) != self.num_classes:
            raise ValueError(f"architectures has {len(self.architectures)} entries but num_classes={self.num_classes}")
        if self.projection_dim is not None and self.projection_dim > self.input_dim:
            raise ValueError(f"projection_dim={self.projection_dim} exceeds input_dim={self.input_dim}")
        return self

    @property
    def has_architecture_head(self) -> bool:
        """Whether the model builds an architecture head: the classes' architectures are known, at least two
        differ (one architecture leaves nothing to tell apart) and ``w_arch > 0``."""
        return len(architecture_names(self.architectures)) >= 2 and self.w_arch > 0


@dataclass(frozen=True)
class DecouplerOutput:
    """One forward pass over ``N`` inputs of dimension ``D`` (``F`` = fp_dim, ``C`` = content_dim, ``K`` classes).

    ``x_std`` ``[N, D]`` is the standardised input and ``recon`` ``[N, D]`` its reconstruction (same space);
    ``mu_*``/``logvar_*`` ``[N, F]`` or ``[N, C]`` are the posterior parameters; ``z_fp`` ``[N, F]`` and ``z_c``
    ``[N, C]`` the codes (samples in training mode, the means in eval mode); ``logits`` ``[N, K]`` the source
    logits from ``z_fp``; ``arch_logits`` ``[N, A]`` the architecture logits (None without an architecture head).
    """

    x_std: Tensor
    mu_fp: Tensor
    logvar_fp: Tensor
    mu_c: Tensor
    logvar_c: Tensor
    z_fp: Tensor
    z_c: Tensor
    recon: Tensor
    logits: Tensor
    arch_logits: Tensor | None = None


@dataclass(frozen=True)
class Codes:
    """Deterministic codes of ``N`` raw inputs as numpy arrays: ``fp`` ``[N, F]``, ``content`` ``[N, C]``,
    ``logits`` ``[N, K]``, ``arch_logits`` ``[N, A]`` (None without an architecture head), and ``generated``
    ``[N]``, the generated-vs-real head's scores (:mod:`causalprint.attribution.generated`; None without one)."""

    fp: np.ndarray
    content: np.ndarray
    logits: np.ndarray
    arch_logits: np.ndarray | None = None
    generated: np.ndarray | None = None


@dataclass(frozen=True)
class _ClassRows:
    """The parts of a :class:`DecouplerOutput` that the source terms (``cls``, the class HSIC, ``adv``, ``swap``)
    read, over the rows that have a class."""

    x_std: Tensor
    mu_c: Tensor
    z_fp: Tensor
    z_c: Tensor
    logits: Tensor

    @classmethod
    def of(cls, out: DecouplerOutput, rows: Tensor | None = None) -> _ClassRows:
        """``out``'s fields that the source terms read, restricted to the boolean mask ``rows`` (None: all)."""
        return cls(
            **{f.name: getattr(out, f.name) if rows is None else getattr(out, f.name)[rows] for f in fields(cls)}
        )


def _as_float_tensor(x: np.ndarray | Tensor) -> Tensor:
    return torch.as_tensor(x if isinstance(x, Tensor) else np.asarray(x), dtype=torch.float32)


def _stack(parts: list[Tensor], dim: int) -> np.ndarray:
    return torch.cat(parts).numpy() if parts else np.zeros((0, dim), np.float32)


def _mlp(d_in: int, hidden: int, d_out: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(d_in, hidden),
        nn.GELU(),
        nn.Dropout(dropout),
        nn.Linear(hidden, hidden),
        nn.GELU(),
        nn.Dropout(dropout),
        nn.Linear(hidden, d_out),
    )


class CosineHead(nn.Module):
    """``logits = s * cos(z, w_k)``: class evidence is the direction of ``z_fp``, which is also what the
    open-set prototypes compare."""

    def __init__(self, dim: int, num_classes: int, scale: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(num_classes, dim) / math.sqrt(dim))
        self.scale = scale

    def forward(self, z: Tensor) -> Tensor:
        return self.scale * F.normalize(z, dim=-1) @ F.normalize(self.weight, dim=-1).T


class CausalDecoupler(nn.Module):
    """Encoder -> (z_fp, z_c); decoder(z_fp ++ z_c) -> x; source head on z_fp. Inputs are raw vectors: the
    model standardises them with its ``x_mean``/``x_std`` buffers (set by :func:`fit_decoupler`)."""

    # Buffers registered in __init__ (``class_arch`` only with an architecture head, ``x_proj`` only with
    # ``projection_dim``); declared here so that attribute access is typed as a tensor.
    class_arch: Tensor
    x_mean: Tensor
    x_std: Tensor
    x_proj: Tensor

    def __init__(self, config: DecouplerConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        self.encoder = _mlp(self.code_input_dim, c.hidden, 2 * (c.fp_dim + c.content_dim), c.dropout)
        self.decoder = _mlp(c.fp_dim + c.content_dim, c.hidden, self.code_input_dim, c.dropout)
        self.head: nn.Module = (
            CosineHead(c.fp_dim, c.num_classes, c.cosine_scale)
            if c.head == "cosine"
            else nn.Linear(c.fp_dim, c.num_classes)
        )
        self.adversary = nn.Linear(c.content_dim, c.num_classes) if c.w_adv > 0 else None
        # Instances of one architecture differ (seed, data); an architecture head trained across them learns
        # what they share, which is what a new instance of that architecture still carries.
        self.arch_names: list[str] = architecture_names(c.architectures)
        self.arch_head: nn.Module | None = None
        if c.has_architecture_head:
            self.arch_head = CosineHead(c.fp_dim, len(self.arch_names), c.cosine_scale)
            assert c.architectures is not None  # has_architecture_head: the architectures are known
            self.register_buffer("class_arch", torch.tensor([self.arch_names.index(a) for a in c.architectures]))
        self.register_buffer("x_mean", torch.zeros(c.input_dim))
        self.register_buffer("x_std", torch.ones(c.input_dim))
        if c.projection_dim is not None:
            self.register_buffer("x_proj", torch.eye(c.input_dim, c.projection_dim))
        self.extras: dict[str, Any] = {}

    @property
    def code_input_dim(self) -> int:
        """Width of what the encoder reads and the decoder rebuilds: the input, or its projection."""
        c = self.config
        return c.input_dim if c.projection_dim is None else c.projection_dim

    @torch.no_grad()
    def fit_input_statistics(self, x: Tensor, max_rows: int = 8192, seed: int = 0) -> None:
        """Set the standardisation buffers (and the principal directions, with ``projection_dim``) from raw
        train rows ``[N, D]``. The projection is fitted on at most ``max_rows`` rows chosen with ``seed``."""
        self.x_mean.copy_(x.mean(0))
        self.x_std.copy_(x.std(0).clamp_min(1e-6))  # constant features stay at 0 after standardisation
        if self.config.projection_dim is None:
            return
        rows = x
        if len(x) > max_rows:
            rows = x[torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[:max_rows]]
        if len(rows) < self.code_input_dim:
            raise ValueError(
                f"projection_dim={self.config.projection_dim} needs at least that many train rows, got {len(rows)}"
            )
        z = (rows - self.x_mean) / self.x_std
        # Randomised SVD (Halko et al.): the top right singular vectors of the centred standardised rows are the
        # principal directions, at a fraction of a full SVD's cost; its random test matrix is seeded locally.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            _, _, v = torch.svd_lowrank(z, q=self.code_input_dim, niter=4)
        self.x_proj.copy_(v)

    # ----- building blocks -----
    def standardise(self, x: Tensor) -> Tensor:
        """Raw inputs -> what the encoder reads (standardised, then projected when ``projection_dim`` is set)."""
        z = (x - self.x_mean) / self.x_std
        return z @ self.x_proj if self.config.projection_dim is not None else z

    def destandardise(self, x_std: Tensor) -> Tensor:
        """The inverse of :meth:`standardise` (within the projection's subspace)."""
        z = x_std @ self.x_proj.T if self.config.projection_dim is not None else x_std
        return z * self.x_std + self.x_mean

    def encode_standardised(self, x_std: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """``(mu_fp, logvar_fp, mu_c, logvar_c)`` of standardised inputs ``[N, D]``."""
        c = self.config
        mu_fp, logvar_fp, mu_c, logvar_c = self.encoder(x_std).split(
            [c.fp_dim, c.fp_dim, c.content_dim, c.content_dim], dim=-1
        )
        # A bounded log-variance keeps exp() finite early in training, when the encoder output is arbitrary.
        return mu_fp, logvar_fp.clamp(-10, 10), mu_c, logvar_c.clamp(-10, 10)

    def _sample(self, mu: Tensor, logvar: Tensor) -> Tensor:
        if not self.training:
            return mu
        return mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)

    def decode(self, z_fp: Tensor, z_c: Tensor) -> Tensor:
        """Standardised reconstruction ``[N, D]`` from ``z_fp`` ``[N, F]`` and ``z_c`` ``[N, C]``."""
        return self.decoder(torch.cat([z_fp, z_c], dim=-1))

    def classify(self, z_fp: Tensor) -> Tensor:
        return self.head(z_fp)

    def classify_architecture(self, z_fp: Tensor) -> Tensor | None:
        return self.arch_head(z_fp) if self.arch_head is not None else None

    def forward(self, x: Tensor) -> DecouplerOutput:
        """Encode raw inputs ``x`` ``[N, D]``, sample codes (training) or take the means (eval), decode, classify."""
        if x.ndim != 2 or x.shape[1] != self.config.input_dim:
            raise ValueError(f"expected x of shape [N, {self.config.input_dim}], got {tuple(x.shape)}")
        x_std = self.standardise(x)
        mu_fp, logvar_fp, mu_c, logvar_c = self.encode_standardised(x_std)
        z_fp, z_c = self._sample(mu_fp, logvar_fp), self._sample(mu_c, logvar_c)
        return DecouplerOutput(
            x_std=x_std,
            mu_fp=mu_fp,
            logvar_fp=logvar_fp,
            mu_c=mu_c,
            logvar_c=logvar_c,
            z_fp=z_fp,
            z_c=z_c,
            recon=self.decode(z_fp, z_c),
            logits=self.classify(z_fp),
            arch_logits=self.classify_architecture(z_fp),
        )

    # ----- training objective -----
    def loss(self, x: Tensor, y: Tensor) -> dict[str, Tensor]:
        """Every loss term on a batch of raw inputs ``x`` ``[N, D]`` with labels ``y`` ``[N]``, and ``"total"``.

        ``y >= 0`` is a class. ``y = -1 - a`` marks a row of an architecture-only source of architecture
        ``arch_names[a]``: it counts in the reconstruction, KL and architecture terms, and in no source term."""
        c = self.config
        y = y.long().to(x.device)
        lowest = -len(self.arch_names) if self.arch_head is not None else 0
        if y.shape != (x.shape[0],) or int(y.min()) < lowest or int(y.max()) >= c.num_classes:
            raise ValueError(
                f"labels must be [N={x.shape[0]}] in [{lowest}, {c.num_classes}); got shape "
                f"{tuple(y.shape)}, range [{int(y.min())}, {int(y.max())}]"
            )
        if x.shape[0] < 2:
            raise ValueError("the decoupler loss needs a batch of at least 2 (HSIC and the swap pair samples)")
        out = self(x)
        known = y >= 0
        all_known = bool(known.all())
        # Only what the source terms read is sliced: the other fields are used over all rows, or not at all.
        src = _ClassRows.of(out, None if all_known else known)
        y_src = y if all_known else y[known]
        zero = torch.zeros((), device=x.device)
        terms: dict[str, Tensor] = {
            "cls": F.cross_entropy(src.logits, y_src) if len(y_src) else zero,
            "rec": F.mse_loss(out.recon, out.x_std),
            "kl": kl_standard_normal(out.mu_fp, out.logvar_fp) + kl_standard_normal(out.mu_c, out.logvar_c),
        }
        # Independence on the means: they are the codes used at inference, and sampling noise would only make
        # the dependence look smaller than it is.
        terms["hsic"] = hsic(out.mu_c, out.mu_fp, c.hsic_sigma)
        if len(y_src) >= 2:
            terms["hsic"] = terms["hsic"] + hsic(src.mu_c, one_hot(y_src, c.num_classes, out.mu_c.dtype), c.hsic_sigma)
        if self.adversary is not None and len(y_src):
            terms["adv"] = F.cross_entropy(self.adversary(grad_reverse(src.mu_c)), y_src)
        else:
            terms["adv"] = zero
        if out.arch_logits is not None:
            arch = torch.where(known, self.class_arch[y.clamp(min=0)], -1 - y)
            terms["arch"] = F.cross_entropy(out.arch_logits, arch)
        else:
            terms["arch"] = zero
        if len(y_src) >= 2:
            terms.update(self._swap_terms(src, y_src))
        else:
            terms.update(swap_cls=zero, swap_content=zero, swap_rec=zero)
        terms["swap"] = terms["swap_cls"] + terms["swap_content"] + terms["swap_rec"]
        terms["total"] = (
            c.w_cls * terms["cls"]
            + c.w_rec * terms["rec"]
            + c.w_kl * terms["kl"]
            + c.w_hsic * terms["hsic"]
            + c.w_adv * terms["adv"]
            + c.w_swap * terms["swap"]
            + c.w_arch * terms["arch"]
        )
        return terms

    def _swap_terms(self, out: _ClassRows, y: Tensor) -> dict[str, Tensor]:
        """Counterfactual consistency: the intervention do(F = f_A) with C = c_B fixed must yield a vector that
        is attributed to A's source and still holds B's content (docs/method.md §4); steps 1-5. Step 6 is the
        null intervention, which is what makes z_fp hold the source and nothing else: without it the swapped
        vector is attributed to A but drags in A's content too."""
        # 1. Pair each sample A with a recipient B = pi(A) by a random permutation pi of the batch.
        perm = torch.randperm(out.z_fp.shape[0], device=out.z_fp.device)
        # 2. Decode the counterfactual x_AB = g(z_fp[A], z_c[B]) (standardised space).
        x_ab = self.decode(out.z_fp, out.z_c[perm])
        # 3. Re-encode it: (mu_fp', mu_c') = e(x_AB); the means, as at inference.
        mu_fp_ab, _, mu_c_ab, _ = self.encode_standardised(x_ab)
        # 4. Its fingerprint must name the donor's source: CE(h(mu_fp'), y_A).
        swap_cls = F.cross_entropy(self.classify(mu_fp_ab), y)
        # 5. Its content code must be the recipient's: ||mu_c' - sg(mu_c[B])||^2. The stop-gradient pulls the
        #    re-encoding towards the code, not the code towards whatever the decoder produced.
        swap_content = F.mse_loss(mu_c_ab, out.mu_c[perm].detach())
        # 6. A fingerprint from another sample B' of B's *own* source is the null intervention: decoding
        #    (z_fp[B'], z_c[B]) with y_B' = y_B must give back x_B. Any content held in z_fp would change it.
        same = y.unsqueeze(0) == y.unsqueeze(1)
        score = torch.rand(same.shape, device=y.device).masked_fill(~same, -2.0)
        score.fill_diagonal_(-1.0)  # oneself only when no other sample of the source is in the batch
        partner = score.argmax(1)
        swap_rec = F.mse_loss(self.decode(out.z_fp[partner], out.z_c), out.x_std)
        return {"swap_cls": swap_cls, "swap_content": swap_content, "swap_rec": swap_rec}

    # ----- inference (raw vectors in, numpy out) -----
    def _device(self) -> torch.device:
        return self.x_mean.device

    @torch.no_grad()
    def predict_codes(self, X: np.ndarray | Tensor, batch_size: int = 4096) -> Codes:
        """Deterministic codes (posterior means) and logits of raw inputs ``[N, D]``."""
        was_training = self.training
        self.eval()
        fp, content, logits, arch = [], [], [], []
        x_all = _as_float_tensor(X)
        for start in range(0, x_all.shape[0], batch_size):
            xb = self.standardise(x_all[start : start + batch_size].to(self._device()))
            mu_fp, _, mu_c, _ = self.encode_standardised(xb)
            fp.append(mu_fp.cpu())
            content.append(mu_c.cpu())
            logits.append(self.classify(mu_fp).cpu())
            if self.arch_head is not None:
                arch.append(self.arch_head(mu_fp).cpu())
        self.train(was_training)
        c = self.config
        return Codes(
            fp=_stack(fp, c.fp_dim),
            content=_stack(content, c.content_dim),
            logits=_stack(logits, c.num_classes),
            arch_logits=_stack(arch, len(self.arch_names)) if self.arch_head is not None else None,
        )

    def architecture_probabilities(self, codes: Codes, temperature: float = 1.0) -> np.ndarray | None:
        """Each row's architecture probabilities ``[N, A]`` over :attr:`arch_names`, from its :class:`Codes`: the
        softmax of the architecture head's logits, or without a head the class probabilities (softmax of the
        logits divided by ``temperature``) summed over each architecture's classes, so that instances of one
        architecture pool their evidence. ``temperature`` applies to class logits only. None when the model was
        trained without class architectures. This is the one rule of the scan and of the evaluation."""
        if codes.arch_logits is not None:
            return torch.softmax(torch.from_numpy(codes.arch_logits), dim=-1).numpy()
        if not self.arch_names:
            return None
        probs = torch.softmax(torch.from_numpy(codes.logits) / temperature, dim=-1).numpy()
        assert self.config.architectures is not None  # arch_names is not empty, so the architectures are known
        return pool_by_architecture(probs, self.config.architectures)

    def architectures_of(self, codes: Codes, temperature: float = 1.0) -> np.ndarray | None:
        """Each row's most likely architecture name (object array): the argmax of
        :meth:`architecture_probabilities`; None when the model was trained without class architectures."""
        probs = self.architecture_probabilities(codes, temperature)
        return None if probs is None else np.array(self.arch_names, dtype=object)[probs.argmax(-1)]

    def predict_architecture(self, X: np.ndarray | Tensor, temperature: float = 1.0) -> np.ndarray:
        """The most likely architecture name ``[N]`` of raw inputs (see :meth:`architecture_probabilities`)."""
        names = self.architectures_of(self.predict_codes(X), temperature)
        if names is None:
            raise ValueError("this model was trained without class architectures")
        return names

    def predict_proba(self, X: np.ndarray | Tensor, temperature: float = 1.0) -> np.ndarray:
        """Source probabilities ``[N, K]``, softmax of the logits divided by ``temperature``."""
        logits = torch.from_numpy(self.predict_codes(X).logits)
        return torch.softmax(logits / temperature, dim=-1).numpy()

    def predict(self, X: np.ndarray | Tensor) -> np.ndarray:
        """The most likely source index ``[N]``."""
        return self.predict_codes(X).logits.argmax(-1)

    @torch.no_grad()
    def counterfactual(self, X: np.ndarray | Tensor, z_fp: np.ndarray | Tensor) -> np.ndarray:
        """Raw-space vectors that keep the content of ``X`` ``[N, D]`` but carry fingerprint ``z_fp`` (``[N, F]``
        or one ``[F]`` code for all): the intervention do(F = z_fp)."""
        was_training = self.training
        self.eval()
        x = _as_float_tensor(X).to(self._device())
        fp = _as_float_tensor(z_fp).to(self._device()).expand(x.shape[0], -1)
        _, _, mu_c, _ = self.encode_standardised(self.standardise(x))
        out = self.destandardise(self.decode(fp, mu_c)).cpu().numpy()
        self.train(was_training)
        return out

    # ----- a model is a folder -----
    def save_pretrained(self, directory: str | Path) -> None:
        """Write ``config.json``, ``model.safetensors`` and, if any, ``extras.json`` (never a pickle)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        tensors = {k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}
        save_file(tensors, str(directory / WEIGHTS_NAME))
        config = {"_class": type(self).__name__, "_format_version": FORMAT_VERSION, **self.config.model_dump()}
        (directory / CONFIG_NAME).write_text(json.dumps(config, indent=2, sort_keys=True))
        if self.extras:
            (directory / EXTRAS_NAME).write_text(json.dumps(self.extras, indent=2, sort_keys=True))

    @classmethod
    def from_pretrained(cls, directory: str | Path, map_location: str | torch.device = "cpu") -> CausalDecoupler:
        """Rebuild a model saved by :meth:`save_pretrained`, in eval mode. Unknown config keys are dropped with
        a warning; defaults filled in for missing keys are logged."""
        directory = Path(directory)
        raw = json.loads((directory / CONFIG_NAME).read_text())
        raw = {k: v for k, v in raw.items() if not k.startswith("_")}
        known = set(DecouplerConfig.model_fields)
        unknown = sorted(set(raw) - known)
        if unknown:
            log.warning("ignoring unknown keys in %s: %s", directory / CONFIG_NAME, unknown)
        defaulted = sorted(known - set(raw) - {"input_dim", "num_classes"})
        if defaulted:
            log.info(
                "filled in defaults for %s: %s",
                directory / CONFIG_NAME,
                {k: DecouplerConfig.model_fields[k].default for k in defaulted},
            )
        model = cls(DecouplerConfig.model_validate({k: v for k, v in raw.items() if k in known}))
        model.load_state_dict(load_file(str(directory / WEIGHTS_NAME), device=str(map_location)), strict=True)
        extras_path = directory / EXTRAS_NAME
        model.extras = json.loads(extras_path.read_text()) if extras_path.exists() else {}
        return model.to(map_location).eval()


def train_epoch(
    loss: Callable[[Tensor, Tensor], dict[str, Tensor]],
    optimizer: torch.optim.Optimizer,
    x: Tensor,
    y: Tensor,
    rows: Tensor,
    batch_size: int,
) -> dict[str, float]:
    """One pass over ``rows`` of ``(x, y)`` in minibatches: step on ``loss(x, y)["total"]``; returns each loss
    term's mean over the steps. A last batch of one row is skipped (HSIC and the swap pairing need two)."""
    sums: dict[str, Tensor] = {}  # tensors: one device sync per epoch, not one per term and step
    steps = 0
    for start in range(0, len(rows), batch_size):
        idx = rows[start : start + batch_size]
        if len(idx) < 2:
            continue
        terms = loss(x[idx], y[idx])
        optimizer.zero_grad(set_to_none=True)
        terms["total"].backward()
        optimizer.step()
        for k, v in terms.items():
            sums[k] = sums[k] + v.detach() if k in sums else v.detach()
        steps += 1
    return {k: float(v) / max(steps, 1) for k, v in sums.items()}


def fit_decoupler(
    X_train: np.ndarray | Tensor,
    y_train: np.ndarray | Tensor,
    config: DecouplerConfig | None = None,
    *,
    epochs: int = 50,
    batch_size: int = 128,
    lr: float = 1e-3,
    weight_decay: float = 1e-4,
    seed: int = 0,
    schedule: Schedule = "constant",
    device: str | torch.device | None = None,
) -> CausalDecoupler:
    """Train a :class:`CausalDecoupler` on raw vectors ``[N, D]`` with integer labels ``[N]`` in ``[0, K)``.

    The standardisation statistics of ``X_train`` become the model's buffers, so the returned model (eval mode)
    takes raw vectors. Per-epoch mean loss terms are kept in ``model.extras["history"]``. ``config=None`` builds
    the default config from the data's shape. ``schedule`` is the learning-rate schedule (constant here, so that
    small fits behave as before; the training job's default is cosine).
    """
    x = _as_float_tensor(X_train)
    y = torch.as_tensor(np.asarray(y_train) if not isinstance(y_train, Tensor) else y_train).long()
    if x.ndim != 2 or y.shape != (x.shape[0],):
        raise ValueError(f"expected X [N, D] and y [N]; got X {tuple(x.shape)}, y {tuple(y.shape)}")
    if config is None:
        config = DecouplerConfig(input_dim=x.shape[1], num_classes=int(y.max()) + 1)
    if x.shape[1] != config.input_dim:
        raise ValueError(f"X has {x.shape[1]} features but config.input_dim={config.input_dim}")
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    torch.manual_seed(seed)
    model = CausalDecoupler(config)
    model.fit_input_statistics(x, seed=seed)
    model.to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    gen = torch.Generator().manual_seed(seed)
    x, y = x.to(device), y.to(device)
    history: list[dict[str, float]] = []
    for epoch in range(epochs):
        set_lr(opt, epoch_lr(lr, epoch, epochs, schedule))
        order = torch.randperm(x.shape[0], generator=gen).to(device)
        history.append(train_epoch(model.loss, opt, x, y, order, batch_size))
        if epoch == epochs - 1 or (epoch + 1) % max(1, epochs // 5) == 0:
            log.info(
                "decoupler epoch %d/%d: %s", epoch + 1, epochs, " ".join(f"{k}={v:.4f}" for k, v in history[-1].items())
            )
    model.extras["history"] = history
    return model.eval()
