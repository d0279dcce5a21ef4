"""The contract every attribution baseline meets: columns of the extraction output in, source probabilities out.

Inputs are a mapping of extraction column names ``<mode>.<space>`` to float32 arrays ``[N, D]`` (see
:data:`COLUMN_DOCS`); labels are int64 ``[N]`` in ``[0, K)``. A fitted baseline holds one ``torch.nn.Module``
whose forward maps the baseline's columns, concatenated in :attr:`Baseline.columns` order (``[B, D]``), to class
logits ``[B, K]``; that module's ``state_dict`` is the whole learned state, so a baseline is a folder::

    config.json          {"baseline": name, "options": {...}, "num_classes": K, "input_widths": {column: D}, ...}
    model.safetensors    the module's state_dict (never a pickle)

A subclass supplies ``name``, ``paper``, ``columns``, an ``Options`` model, :meth:`Baseline._build` (the
module, from options, width and ``K`` alone) and :meth:`Baseline._train` (fit that module in place).
"""

from __future__ import annotations

import json
import logging
import math
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import torch
from pydantic import Field, ValidationError
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from causalprint.config import ConfigError, StrictModel, format_validation_error
from causalprint.runtime.device import pick_device

log = logging.getLogger(__name__)

__all__ = ["COLUMN_DOCS", "Baseline", "BaselineOptions", "image_side"]

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
FORMAT_VERSION = 1

COLUMN_DOCS: dict[str, str] = {
    "image.rgb": "the image in [-1, 1], [N, 3*S*S] (C-order flatten of [N, 3, S, S])",
    "image.dct": "log-magnitude 2-D DCT of the image, [N, 3*S*S]",
    "image.sl": "frozen EfficientNet-Lite0 embedding of the image, [N, 1280]",
    "latent.rgb": "signed autoencoder residual x - AE(x), [N, 3*S*S]",
    "dire.rgb": "signed DIRE residual (x minus DDIM inversion + reconstruction), [N, 3*S*S]",
}
"""The extraction columns the baselines read, and what each holds."""


def image_side(width: int) -> int | None:
    """``S`` when ``width == 3 * S * S`` for a whole ``S >= 1``, else ``None``."""
    side = math.isqrt(width // 3) if width > 0 and width % 3 == 0 else 0
    return side if side >= 1 and 3 * side * side == width else None


class BaselineOptions(StrictModel):
    """Hyper-parameters every baseline has (frozen; unknown keys are errors)."""

    seed: int = Field(default=0, description="seeds weight init and minibatch order")
    inference_batch_size: int | None = Field(
        default=None,
        ge=1,
        description="rows per forward pass at inference; None: 64 on the CPU (larger batches of 32x32 images fall "
        "out of cache and run slower per row there), 1024 elsewhere",
    )


class Baseline(ABC):
    """An attribution baseline with scikit-learn verbs; learned attributes end in ``_``.

    ``Baseline(options=None, device=None, **overrides)``: ``overrides`` are fields of :attr:`Options` (an unknown
    one raises :class:`~causalprint.config.ConfigError`); ``device=None`` picks CUDA when visible, else the CPU.
    Results are deterministic given ``seed`` on one device (on CUDA, up to cuDNN's own nondeterminism).
    """

    name: ClassVar[str]
    paper: ClassVar[str]
    columns: ClassVar[tuple[str, ...]]
    Options: ClassVar[type[BaselineOptions]] = BaselineOptions

    def __init__(
        self, options: BaselineOptions | None = None, *, device: str | torch.device | None = None, **overrides: Any
    ) -> None:
        if options is not None and not isinstance(options, self.Options):
            raise TypeError(f"{self.name} takes {self.Options.__name__}, got {type(options).__name__}")
        base = options.model_dump() if options is not None else {}
        try:
            self.options = self.Options.model_validate({**base, **overrides})
        except ValidationError as exc:
            raise ConfigError(format_validation_error(exc, f"{self.name} options")) from exc
        self.device = torch.device(device) if device is not None else pick_device()
        self.module_: nn.Module | None = None
        self.num_classes_: int = 0
        self.input_widths_: dict[str, int] = {}
        self.history_: list[dict[str, float]] = []

    def __repr__(self) -> str:
        state = f"K={self.num_classes_}" if self.module_ is not None else "unfitted"
        return f"{type(self).__name__}({self.options!r}, {state}, device={self.device})"

    # ----- what a subclass supplies -----
    @classmethod
    def expected_width(cls, column: str, width: int) -> str | None:
        """``None`` if ``width`` is acceptable for ``column`` at fit time, else what was expected. Default: an
        image-shaped column, ``3 * S * S``."""
        return None if image_side(width) is not None else "3*S*S for a whole image side S (e.g. 3072 for S=32)"

    @abstractmethod
    def _build(self, width: int, num_classes: int) -> nn.Module:
        """A fresh module mapping ``[B, width]`` to logits ``[B, num_classes]``, determined by the options, the
        width and ``K`` alone (``from_pretrained`` rebuilds it this way before loading the weights)."""

    @abstractmethod
    def _train(self, module: nn.Module, x: Tensor, y: Tensor) -> list[dict[str, float]]:
        """Fit ``module`` (already on :attr:`device`) in place on CPU rows ``x`` ``[N, width]`` with labels ``y``
        ``[N]``; returns per-epoch statistics (may be empty)."""

    # ----- the verbs -----
    def fit(self, inputs: Mapping[str, np.ndarray], y: np.ndarray, num_classes: int) -> Self:
        """Fit on ``inputs`` (at least :attr:`columns`, each ``[N, D]``) and labels ``y`` ``[N]`` in
        ``[0, num_classes)``; classes without rows are allowed but never predicted."""
        if int(num_classes) < 2:
            raise ValueError(f"{self.name}: num_classes must be >= 2, got {num_classes}")
        x, widths = self._matrix(inputs, fitted=False)
        labels = np.asarray(y)
        if labels.shape != (x.shape[0],) or not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(f"{self.name}: y must be integer [N={x.shape[0]}], got {labels.dtype} {labels.shape}")
        if x.shape[0] == 0:
            raise ValueError(f"{self.name}: cannot fit on zero rows")
        lo, hi = int(labels.min()), int(labels.max())
        if lo < 0 or hi >= num_classes:
            raise ValueError(f"{self.name}: labels must lie in [0, {num_classes}), got range [{lo}, {hi}]")
        log.info(
            "fitting %s on %d rows x %d (%s), %d classes, device %s",
            self.name,
            x.shape[0],
            x.shape[1],
            ", ".join(self.columns),
            num_classes,
            self.device,
        )
        start = time.perf_counter()
        module = self._seeded_build(x.shape[1], int(num_classes)).to(self.device)
        history = self._train(module, torch.from_numpy(x), torch.from_numpy(labels.astype(np.int64)))
        self.module_, self.num_classes_, self.input_widths_ = module.eval(), int(num_classes), widths
        self.history_ = history
        log.info("fitted %s in %.1f s", self.name, time.perf_counter() - start)
        return self

    def logits(self, inputs: Mapping[str, np.ndarray]) -> np.ndarray:
        """Class scores ``[N, K]`` before the softmax."""
        return self._map(inputs, lambda module, xb: module(xb), self.num_classes_)

    def predict_proba(self, inputs: Mapping[str, np.ndarray]) -> np.ndarray:
        """Source probabilities ``[N, K]`` (float32, rows sum to 1)."""
        return self._map(inputs, lambda module, xb: torch.softmax(module(xb).double(), -1), self.num_classes_)

    def predict(self, inputs: Mapping[str, np.ndarray]) -> np.ndarray:
        """The most likely source index ``[N]`` (int64)."""
        return self.logits(inputs).argmax(-1).astype(np.int64)

    def known_score(self, inputs: Mapping[str, np.ndarray]) -> np.ndarray:
        """``[N]``, higher = more likely a source seen in training (open-set AUROC). Default: the max
        probability."""
        return self.predict_proba(inputs).max(-1)

    # ----- a baseline is a folder -----
    def save_pretrained(self, directory: str | Path) -> Path:
        """Write ``config.json`` and ``model.safetensors`` (never a pickle) into ``directory``."""
        module = self._fitted()
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        tensors = {k: v.detach().contiguous().cpu() for k, v in module.state_dict().items()}
        save_file(tensors, str(directory / WEIGHTS_NAME))
        config = {
            "_class": type(self).__name__,
            "_format_version": FORMAT_VERSION,
            "baseline": self.name,
            "paper": self.paper,
            "columns": list(self.columns),
            "input_widths": self.input_widths_,
            "num_classes": self.num_classes_,
            "options": self.options.model_dump(mode="json"),
        }
        (directory / CONFIG_NAME).write_text(json.dumps(config, indent=2, sort_keys=True))
        return directory

    @classmethod
    def from_pretrained(cls, directory: str | Path, device: str | torch.device | None = None) -> Self:
        """Rebuild a baseline written by :meth:`save_pretrained`. Unknown option keys are dropped with a
        warning; defaults filled in for missing ones are logged."""
        directory = Path(directory)
        config = json.loads((directory / CONFIG_NAME).read_text())
        if config.get("baseline") != cls.name:
            raise ValueError(
                f"{directory} holds a {config.get('baseline')!r} baseline, not {cls.name!r}; "
                "use causalprint.baselines.load_baseline to pick the class from the folder"
            )
        if list(config["columns"]) != list(cls.columns):
            raise ValueError(
                f"{directory} was saved for columns {config['columns']}, {cls.name} reads {list(cls.columns)}"
            )
        raw: dict[str, Any] = dict(config.get("options", {}))
        known = set(cls.Options.model_fields)
        unknown = sorted(set(raw) - known)
        if unknown:
            log.warning("ignoring unknown options in %s: %s", directory / CONFIG_NAME, unknown)
        defaulted = sorted(known - set(raw))
        if defaulted:
            log.info(
                "filled in defaults for %s: %s",
                directory / CONFIG_NAME,
                {k: cls.Options.model_fields[k].default for k in defaulted},
            )
        baseline = cls(cls.Options.model_validate({k: v for k, v in raw.items() if k in known}), device=device)
        widths = {str(k): int(v) for k, v in config["input_widths"].items()}
        module = baseline._seeded_build(sum(widths.values()), int(config["num_classes"]))
        module.load_state_dict(load_file(str(directory / WEIGHTS_NAME)), strict=True)
        baseline.module_ = module.to(baseline.device).eval()
        baseline.num_classes_, baseline.input_widths_ = int(config["num_classes"]), widths
        return baseline

    # ----- plumbing -----
    @property
    def inference_batch_size(self) -> int:
        """Rows per forward pass at inference on :attr:`device` (see :class:`BaselineOptions`)."""
        if self.options.inference_batch_size is not None:
            return self.options.inference_batch_size
        return 64 if self.device.type == "cpu" else 1024

    def _seeded_build(self, width: int, num_classes: int) -> nn.Module:
        """:meth:`_build` under ``seed``, without disturbing the caller's global CPU random state."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.options.seed)
            return self._build(width, num_classes)

    def _fitted(self) -> nn.Module:
        if self.module_ is None:
            raise RuntimeError(f"{self.name} is not fitted: call fit() or from_pretrained() first")
        return self.module_

    def _matrix(self, inputs: Mapping[str, np.ndarray], *, fitted: bool) -> tuple[np.ndarray, dict[str, int]]:
        """Validate :attr:`columns` of ``inputs`` and concatenate them: float32 ``[N, sum D]`` and the widths."""
        parts: list[np.ndarray] = []
        widths: dict[str, int] = {}
        for column in self.columns:
            what = COLUMN_DOCS.get(column, "a float32 [N, D] array")
            if column not in inputs:
                raise ValueError(f"{self.name} needs column {column!r} ({what}); got columns {sorted(inputs)}")
            arr = np.asarray(inputs[column], dtype=np.float32)
            if arr.ndim != 2:
                raise ValueError(f"column {column!r} must be 2-D [N, D] ({what}), got shape {arr.shape}")
            width = arr.shape[1]
            if fitted:
                if width != self.input_widths_[column]:
                    raise ValueError(
                        f"column {column!r} has width {width}, but this {self.name} was fitted on "
                        f"width {self.input_widths_[column]}"
                    )
            elif (expected := self.expected_width(column, width)) is not None:
                raise ValueError(f"column {column!r} has width {width}; {self.name} expects {expected}")
            if parts and arr.shape[0] != parts[0].shape[0]:
                raise ValueError(
                    f"column {column!r} has {arr.shape[0]} rows, {self.columns[0]!r} has {parts[0].shape[0]}"
                )
            if not np.isfinite(arr).all():
                raise ValueError(f"column {column!r} holds non-finite values (NaN or inf)")
            parts.append(arr)
            widths[column] = width
        x = np.ascontiguousarray(parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1))
        # Arrow-backed columns are read-only; torch.from_numpy warns on those, so they are copied once.
        return (x if x.flags.writeable else x.copy()), widths

    @torch.no_grad()
    def _map(
        self, inputs: Mapping[str, np.ndarray], fn: Callable[[nn.Module, Tensor], Tensor], out_dim: int | None
    ) -> np.ndarray:
        """Apply ``fn(module, rows)`` batch by batch on :attr:`device`; float32 ``[N, out_dim]`` (``[N]`` for
        ``out_dim=None``)."""
        module = self._fitted()
        x, _ = self._matrix(inputs, fitted=True)
        size = self.inference_batch_size
        outs = [
            fn(module, torch.from_numpy(x[i : i + size]).to(self.device)).float().cpu()
            for i in range(0, x.shape[0], size)
        ]
        if not outs:
            return np.zeros((0,) if out_dim is None else (0, out_dim), np.float32)
        return torch.cat(outs).numpy()
