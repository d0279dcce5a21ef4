"""Model outputs -> uint8 arrays -> image files, byte-for-byte reproducible."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Literal

import numpy as np
from PIL import Image
from pydantic import Field

from causalprint.config import StrictModel

if TYPE_CHECKING:
    import torch

_SUFFIXES = {"png": ".png", "jpeg": ".jpg", "webp": ".webp"}


class EncodingConfig(StrictModel):
    """How generated images are written. PNG is lossless; ``quality`` applies to JPEG and WebP only."""

    format: Literal["png", "jpeg", "webp"] = "png"
    quality: int = Field(default=95, ge=1, le=100)


def to_uint8(images: np.ndarray | torch.Tensor) -> np.ndarray:
    """Float ``[N, C, H, W]`` or ``[C, H, W]`` in ``[-1, 1]`` -> uint8 ``[N, H, W, C]`` / ``[H, W, C]``.

    Maps ``v -> round((v + 1) * 127.5)`` clipped to 0..255 (half-way values round to even). A uint8 array that
    is already channel-last (``[..., H, W, 1|3|4]``) passes through unchanged. NaN is an error, not black.
    """
    array = _as_numpy(images)
    if array.ndim not in (3, 4):
        raise ValueError(f"expected [C, H, W] or [N, C, H, W], got shape {array.shape}")
    if array.dtype == np.uint8:
        if array.shape[-1] not in (1, 3, 4):
            raise ValueError(f"uint8 input must be channel-last [..., H, W, C], got shape {array.shape}")
        return array
    if not np.issubdtype(array.dtype, np.floating):
        raise ValueError(f"expected a float or uint8 array, got dtype {array.dtype}")
    if array.shape[-3] not in (1, 3, 4):
        raise ValueError(f"expected channels-first [..., C, H, W] with C in 1, 3, 4, got shape {array.shape}")
    if np.isnan(array).any():
        raise ValueError("images contain NaN")
    scaled = np.clip(np.rint((array.astype(np.float32) + 1.0) * 127.5), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(np.moveaxis(scaled, -3, -1))


def _as_numpy(images: np.ndarray | torch.Tensor) -> np.ndarray:
    if isinstance(images, np.ndarray):
        return images
    if hasattr(images, "detach"):  # a torch tensor; torch is not imported here because it is heavy
        tensor = images.detach().cpu()
        if tensor.is_floating_point():
            tensor = tensor.float()  # bfloat16/float16 have no (or a lossy) numpy path
        return tensor.numpy()
    raise TypeError(f"expected a numpy array or torch tensor, got {type(images).__name__}")


def encode_image(array: np.ndarray, config: EncodingConfig) -> bytes:
    """One ``[H, W, 3]`` uint8 RGB array -> file bytes. Writes no metadata, so equal pixels give equal bytes."""
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] != 3:
        raise ValueError(f"expected an [H, W, 3] uint8 array, got shape {array.shape} dtype {array.dtype}")
    image = Image.fromarray(np.ascontiguousarray(array))
    buffer = io.BytesIO()
    if config.format == "png":
        # Fixed compression settings: the bytes must not depend on PIL's defaults changing.
        image.save(buffer, format="PNG", compress_level=6, optimize=False)
    elif config.format == "jpeg":
        # 4:2:0 chroma subsampling pinned explicitly: it shapes the artefacts a forensic model sees.
        image.save(buffer, format="JPEG", quality=config.quality, subsampling="4:2:0", optimize=False)
    else:
        image.save(buffer, format="WEBP", quality=config.quality, method=4, lossless=False, exact=False)
    return buffer.getvalue()


def file_suffix(config: EncodingConfig) -> str:
    """The file name suffix for ``config.format``: ``.png``, ``.jpg`` or ``.webp``."""
    return _SUFFIXES[config.format]
