"""Which torch device this process computes on."""

from __future__ import annotations

import torch


def pick_device() -> torch.device:
    """CUDA where a GPU is visible to this process (Ray sets that per task or actor), else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
