"""Colour Fourier space: the quaternion Fourier transform (QFT) magnitude of the residual, or per-channel FFTs.

Construction of the QFT (Ell & Sangwine, IEEE TIP 2007), mode ``"qft"``:

1. Each pixel is the pure quaternion ``f = R i + G j + B k``.
2. The left-sided QFT with the unit pure quaternion axis ``mu = (i + j + k) / sqrt(3)`` (the grey axis) is
   ``F(u, v) = 1/S sum_{x, y} exp(-mu 2 pi (u x + v y) / S) f(x, y)`` (orthonormal scaling, as ``norm="ortho"``).
3. Symplectic decomposition: pick a unit pure quaternion ``nu`` orthogonal to ``mu``; then ``{1, mu, nu, mu nu}``
   is an orthonormal basis and ``f = f1 + f2 nu`` with ``f1, f2`` in the complex plane ``C_mu = {a + b mu}``.
   We take ``nu = (j - k) / sqrt(2)``, so ``mu nu = (-2 i + j + k) / sqrt(6)`` and, for a pure ``f``,
   ``f1 = 0 + s mu`` with ``s = (R + G + B) / sqrt(3)`` (luminance part),
   ``f2 = a + b mu`` with ``a = (G - B) / sqrt(2)``, ``b = (-2 R + G + B) / sqrt(6)`` (chrominance part).
4. ``exp(-mu t)`` lies in ``C_mu`` and multiplies from the left, so ``exp(-mu t) f2 nu = (exp(-mu t) f2) nu`` and
   ``F = FFT(f1) + FFT(f2) nu``: two ordinary complex FFTs with ``mu`` playing the role of ``i``.
5. ``|F|^2 = |FFT(f1)|^2 + |FFT(f2)|^2``, because ``C_mu`` and ``C_mu nu`` are orthogonal and ``|q nu| = |q|``.

The magnitude does not depend on which ``nu`` is picked (another choice rotates ``f2`` by a unit complex
factor). For a grey image (R = G = B = g) ``f2 = 0`` and ``f1 = sqrt(3) g mu``, so ``|F| = sqrt(3) |FFT(g)|``.
The embedding is ``log(|F| + eps)``, fftshifted so that DC sits at the centre: ``[N, S^2]``.

Mode ``"fft"`` is the per-channel alternative: ``log(|FFT(c)| + eps)`` for each channel, fftshifted,
``[N, 3 S^2]``.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from causalprint.features.spaces._common import check_residuals, reject_unknown
from causalprint.features.spaces.base import FeatureSpace

_MODES = ("qft", "fft")


def qft_magnitude(residuals: torch.Tensor) -> torch.Tensor:
    """``|QFT|`` of ``[N, 3, S, S]`` RGB maps with axis ``mu = (i + j + k)/sqrt(3)``: ``[N, S, S]``, unshifted."""
    r, g, b = residuals.unbind(1)
    # Step 3: the symplectic parts as complex images in C_mu (mu -> 1j).
    f1 = torch.complex(torch.zeros_like(r), (r + g + b) / math.sqrt(3.0))
    f2 = torch.complex((g - b) / math.sqrt(2.0), (g + b - 2.0 * r) / math.sqrt(6.0))
    # Step 4: two complex FFTs.
    spectra = torch.fft.fft2(torch.stack((f1, f2), dim=1), norm="ortho")
    # Step 5: the 4 real parts per frequency, last and contiguous (a strided reduction is far slower on CPU);
    # vector_norm's backward is zero, not NaN, where the magnitude vanishes.
    parts = torch.view_as_real(spectra).movedim(1, -1).flatten(-2)
    return torch.linalg.vector_norm(parts, dim=-1)


class FourierSpace(FeatureSpace):
    """Log-magnitude colour spectrum; ``mode`` is ``"qft"`` (default, ``dim = S^2``) or ``"fft"``
    (``dim = 3 S^2``); ``eps`` (default 1e-5) bounds the log where the spectrum vanishes."""

    name = "fourier"

    def __init__(self, image_size: int, device: str | torch.device = "cpu", **options: Any) -> None:
        super().__init__(image_size, device)
        self.mode = str(options.pop("mode", "qft"))
        self.eps = float(options.pop("eps", 1e-5))
        reject_unknown(self.name, options)
        if self.mode not in _MODES:
            raise ValueError(f"mode must be one of {_MODES}, got {self.mode!r}")
        if self.eps <= 0:
            raise ValueError(f"eps must be > 0, got {self.eps}")

    @property
    def dim(self) -> int:
        return (1 if self.mode == "qft" else 3) * self.image_size**2

    def embed(self, residuals: torch.Tensor) -> torch.Tensor:
        x = check_residuals(residuals, self.image_size).to(self.device, torch.float32)
        if self.mode == "qft":
            magnitude = qft_magnitude(x)
        else:
            magnitude = torch.fft.fft2(x, norm="ortho").abs()
        magnitude = torch.fft.fftshift(magnitude, dim=(-2, -1))
        return torch.log(magnitude + self.eps).flatten(1)

    def identity(self) -> dict[str, str]:
        return {"name": self.name, "mode": self.mode, "eps": repr(self.eps)}
