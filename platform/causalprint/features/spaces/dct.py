"""DCT space: the log-magnitude 2-D DCT spectrum of each residual channel (Frank et al., ICML 2020).

Upsampling layers leave periodic traces that show up as peaks in the DCT spectrum; the log keeps the small
high-frequency coefficients visible next to the large low-frequency ones.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from causalprint.features.spaces._common import check_residuals, reject_unknown
from causalprint.features.spaces.base import FeatureSpace


def dct_matrix(n: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """The orthonormal DCT-II basis ``D`` (``[n, n]``): ``D[k, m] = a_k cos(pi (2m + 1) k / 2n)``,
    ``a_0 = sqrt(1/n)``, ``a_k = sqrt(2/n)``; so ``D @ x`` equals ``scipy.fft.dct(x, norm="ortho")``."""
    k = torch.arange(n, dtype=torch.float64).unsqueeze(1)
    m = torch.arange(n, dtype=torch.float64).unsqueeze(0)
    basis = torch.cos(math.pi * (2 * m + 1) * k / (2 * n)) * math.sqrt(2.0 / n)
    basis[0] /= math.sqrt(2.0)
    return basis.to(dtype)


class DCTSpace(FeatureSpace):
    """``[N, 3, S, S]`` -> ``[N, 3 S^2]``: ``log(|D X D^T| + eps)`` per channel, coefficients in row-major
    (vertical frequency, horizontal frequency) order, DC first.

    The transform is two matmuls with a fixed basis, so it is differentiable and runs as fast on CPU as on GPU.
    ``eps`` (default 1e-5) bounds the log where a coefficient vanishes; residual coefficients are ~1e-3..1.
    """

    name = "dct"

    def __init__(self, image_size: int, device: str | torch.device = "cpu", **options: Any) -> None:
        super().__init__(image_size, device)
        self.eps = float(options.pop("eps", 1e-5))
        reject_unknown(self.name, options)
        if self.eps <= 0:
            raise ValueError(f"eps must be > 0, got {self.eps}")
        self._basis = dct_matrix(image_size, torch.float32).to(self.device)

    @property
    def dim(self) -> int:
        return 3 * self.image_size**2

    def coefficients(self, residuals: torch.Tensor) -> torch.Tensor:
        """Orthonormal 2-D DCT-II per channel, ``[N, 3, S, S]`` (no log)."""
        x = check_residuals(residuals, self.image_size).to(self.device, torch.float32)
        return self._basis @ x @ self._basis.T

    def embed(self, residuals: torch.Tensor) -> torch.Tensor:
        return torch.log(self.coefficients(residuals).abs() + self.eps).flatten(1)

    def identity(self) -> dict[str, str]:
        return {"name": self.name, "eps": repr(self.eps)}
