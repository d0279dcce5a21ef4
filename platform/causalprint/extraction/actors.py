"""Callable-class actors for Ray Data: each loads its model once and transforms batches of numpy columns."""

from __future__ import annotations

import hashlib
import tempfile
from typing import Any

import numpy as np
import torch

from causalprint.data.parts import write_batch_part
from causalprint.extraction.config import SpaceSpec
from causalprint.features.registry import create_space
from causalprint.residual.reference import ReferenceModel
from causalprint.residual.registry import create_mode
from causalprint.runtime.device import pick_device
from causalprint.storage import Storage
from causalprint.storage.folders import download_folder

_PRECISION = {"float32": None, "float16": torch.float16, "bfloat16": torch.bfloat16}


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """Mixed precision only where it pays: ``auto`` is bf16 on CUDA and full precision on CPU."""
    if precision == "auto":
        return torch.bfloat16 if device.type == "cuda" else None
    return _PRECISION[precision]


def image_seeds(images: np.ndarray) -> torch.Tensor:
    """A per-image seed from the pixels, so noise depends on the image alone (not its batch or its URI)."""
    seeds = [int.from_bytes(hashlib.sha256(img.tobytes()).digest()[:4], "little") & 0x7FFFFFFF for img in images]
    return torch.tensor(seeds, dtype=torch.long)


def load_reference(storage: Storage, uri: str) -> ReferenceModel:
    """Download a reference folder from storage and load it (diffusers format, safetensors only)."""
    with tempfile.TemporaryDirectory() as tmp:
        return ReferenceModel.from_pretrained(download_folder(storage, uri, tmp))


def to_model_input(images: np.ndarray, device: torch.device) -> torch.Tensor:
    """uint8 ``[N, S, S, 3]`` -> float ``[N, 3, S, S]`` in [-1, 1]."""
    return torch.from_numpy(np.ascontiguousarray(images)).to(device).permute(0, 3, 1, 2).float().div(127.5).sub(1)


class ResidualActor:
    """Adds ``residual.<mode>`` columns (float32 ``[N, 3, S, S]``); error rows get zeros. ``device``: the
    accelerator when there is one, unless set."""

    def __init__(
        self,
        storage: Storage,
        reference_uri: str,
        modes: dict[str, dict[str, Any]],
        precision: str,
        device: str | torch.device | None = None,
    ):
        self.device = torch.device(device) if device is not None else pick_device()
        self.reference = load_reference(storage, reference_uri).to(self.device)
        dtype = autocast_dtype(precision, self.device)
        self.modes = {name: create_mode(name, self.reference, autocast=dtype, **opts) for name, opts in modes.items()}

    @torch.no_grad()
    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        ok = batch["ok"].astype(bool)
        n, size = len(ok), self.reference.image_size
        out = dict(batch)
        out["reference_id"] = np.array([self.reference.identity.id] * n, dtype=object)
        residuals = {name: np.zeros((n, 3, size, size), np.float32) for name in self.modes}
        if ok.any():
            images = batch["image"][ok]
            x, seeds = to_model_input(images, self.device), image_seeds(images)
            for name, mode in self.modes.items():
                residuals[name][ok] = mode(x, seeds).cpu().numpy()
        out.update({f"residual.{name}": r for name, r in residuals.items()})
        return out


class FeatureActor:
    """Turns every ``residual.<mode>`` column into ``<mode>.<space>`` vectors and drops the pixel columns;
    with ``columns``, only those vectors are computed (a scan needs only its attributor's)."""

    def __init__(
        self,
        storage: Storage,
        spaces: list[SpaceSpec],
        image_size: int,
        columns: list[str] | None = None,
        device: str | torch.device | None = None,
    ):
        self.device = torch.device(device) if device is not None else pick_device()
        self.columns = set(columns) if columns is not None else None
        self._tmp = tempfile.TemporaryDirectory()
        self.spaces = {}
        for spec in spaces:
            options = dict(spec.options)
            if spec.weights:
                options["path"] = str(download_folder(storage, spec.weights, f"{self._tmp.name}/{spec.name}"))
            self.spaces[spec.name] = create_space(spec.name, image_size, device=self.device, **options)

    @torch.no_grad()
    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        ok = batch["ok"].astype(bool)
        out = {k: v for k, v in batch.items() if k != "image" and not k.startswith("residual.")}
        for column in [k for k in batch if k.startswith("residual.")]:
            mode = column.removeprefix("residual.")
            residual = torch.from_numpy(batch[column]).to(self.device)
            for name, space in self.spaces.items():
                if self.columns is not None and f"{mode}.{name}" not in self.columns:
                    continue
                vectors = np.zeros((len(ok), space.dim), np.float32)
                if ok.any():
                    vectors[ok] = space.embed(residual[ok]).float().cpu().numpy()
                out[f"{mode}.{name}"] = vectors
        return out

    def identities(self) -> dict[str, dict[str, str]]:
        return {name: space.identity() for name, space in self.spaces.items()}


class ExtractActor:
    """The extraction job's actor: residual, features, then the batch's Parquet part under ``output`` (one model
    load per worker; no residual tensors through the object store)."""

    def __init__(
        self,
        storage: Storage,
        reference_uri: str,
        modes: dict[str, dict[str, Any]],
        precision: str,
        spaces: list[SpaceSpec],
        image_size: int,
        output: str,
    ):
        self.residual = ResidualActor(storage, reference_uri, modes, precision)
        self.features = FeatureActor(storage, spaces, image_size)
        self.storage, self.output = storage, output

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return write_batch_part(self.features(self.residual(batch)), self.storage, self.output)
