"""The reference diffusion model: a diffusers folder (UNet + scheduler, optionally an AutoencoderKL).

Any local diffusers-format directory loads here, so a user can bring a real pretrained model on a GPU cluster::

    reference/
      unet/{config.json, diffusion_pytorch_model.safetensors}
      scheduler/scheduler_config.json
      vae/{config.json, diffusion_pytorch_model.safetensors}        (optional; the latent mode needs it)
      causalprint_reference.json                                  (optional; name and training provenance)

Weights load with ``use_safetensors=True``: a folder that only holds pickled ``.bin`` weights is refused. The
identity (name + a hash over every weight and config file) travels with each residual, so residuals of
different reference models are never mixed.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import torch
from diffusers import AutoencoderKL, DDIMScheduler, UNet2DModel
from diffusers.utils import is_accelerate_available

MANIFEST_FILE = "causalprint_reference.json"


@dataclass(frozen=True)
class ReferenceIdentity:
    """Name and content hash of a reference model; ``id`` is what residual rows carry."""

    name: str
    sha256: str

    @property
    def id(self) -> str:
        return f"{self.name}@{self.sha256[:16]}"


def folder_hash(directory: str | Path) -> str:
    """sha256 over every file's relative path and bytes, in sorted order."""
    directory = Path(directory)
    digest = hashlib.sha256()
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        if path.name == MANIFEST_FILE:
            continue  # provenance notes do not change what the model computes
        digest.update(str(path.relative_to(directory)).encode())
        with path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


class ReferenceModel:
    """A frozen noise predictor with its DDIM scheduler, and an optional autoencoder."""

    def __init__(
        self,
        unet: UNet2DModel,
        scheduler: DDIMScheduler,
        vae: AutoencoderKL | None = None,
        identity: ReferenceIdentity | None = None,
        info: dict | None = None,
    ) -> None:
        self.unet = unet.eval().requires_grad_(False)
        self.scheduler = scheduler
        self.vae = vae.eval().requires_grad_(False) if vae is not None else None
        self.identity = identity or ReferenceIdentity("unsaved", "0" * 64)
        self.info = dict(info or {})

    @property
    def image_size(self) -> int:
        return int(self.unet.config.sample_size)

    @property
    def device(self) -> torch.device:
        return next(self.unet.parameters()).device

    def to(self, device: str | torch.device, dtype: torch.dtype = torch.float32) -> ReferenceModel:
        for module in (self.unet, self.vae):
            if module is None:
                continue
            # diffusers warns about fp32-only modules on any dtype argument, even with none: pass one only to cast.
            if module.dtype == dtype:
                module.to(device=device)
            else:
                module.to(device=device, dtype=dtype)
        return self

    def save_pretrained(self, directory: str | Path, name: str | None = None) -> ReferenceIdentity:
        """Write the diffusers folder (safetensors) and return the identity of what was written."""
        directory = Path(directory)
        self.unet.save_pretrained(directory / "unet", safe_serialization=True)
        self.scheduler.save_pretrained(directory / "scheduler")
        if self.vae is not None:
            self.vae.save_pretrained(directory / "vae", safe_serialization=True)
        name = name or self.identity.name
        (directory / MANIFEST_FILE).write_text(json.dumps({"name": name, **self.info}, indent=2, sort_keys=True))
        self.identity = ReferenceIdentity(name, folder_hash(directory))
        return self.identity

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> ReferenceModel:
        """Load any local diffusers-format folder with a ``unet`` (and optional ``scheduler``/``vae``)."""
        directory = Path(directory)
        if not (directory / "unet").is_dir():
            raise FileNotFoundError(f"{directory} is not a reference model folder: no unet/ subfolder")
        # Without accelerate, diffusers falls back to a plain load anyway and warns once per actor; say so up front.
        load = {"use_safetensors": True, "low_cpu_mem_usage": is_accelerate_available()}
        unet = UNet2DModel.from_pretrained(directory, subfolder="unet", **load)
        if (directory / "scheduler").is_dir():
            scheduler = DDIMScheduler.from_pretrained(directory, subfolder="scheduler")
        else:
            scheduler = DDIMScheduler(num_train_timesteps=1000)
        vae = None
        if (directory / "vae").is_dir():
            vae = AutoencoderKL.from_pretrained(directory, subfolder="vae", **load)
        info = json.loads((directory / MANIFEST_FILE).read_text()) if (directory / MANIFEST_FILE).exists() else {}
        name = str(info.pop("name", directory.name))
        return cls(unet, scheduler, vae, ReferenceIdentity(name, folder_hash(directory)), info)
