"""Reproducible randomness: stable seeds derived from names, and noise drawn from a seed alone."""

from __future__ import annotations

import hashlib

import torch


def derive_seed(*parts: object) -> int:
    """A stable 31-bit seed from any printable parts (independent streams for crops, samples, images)."""
    return int.from_bytes(hashlib.sha256(repr(parts).encode()).digest()[:4], "little") & 0x7FFFFFFF


def seeded_noise(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    """Standard normal noise on the CPU that depends only on ``shape`` and ``seed``."""
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))
