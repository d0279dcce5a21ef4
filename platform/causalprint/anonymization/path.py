"""The attributor's input path as one differentiable function: pixels -> residuals -> feature vectors ->
fingerprint code, built from the very modules an :class:`AttributionPipeline` runs."""

from __future__ import annotations

import torch

from causalprint.scan.image_attributor import ImageAttributor as AttributionPipeline


class FingerprintPath:
    """``codes(x, seeds)``: images in [-1, 1] ``[N, 3, S, S]`` (requires_grad allowed) -> fingerprint codes
    ``[N, F]`` (posterior means), exactly as :meth:`AttributionPipeline.codes` computes them for those seeds."""

    def __init__(self, pipeline: AttributionPipeline) -> None:
        self.pipeline = pipeline
        self.modes = pipeline.residuals.modes
        self.spaces = pipeline.features.spaces
        self.columns = [c.partition(".") for c in pipeline.spec.columns]
        not_differentiable = sorted({m for m, _, _ in self.columns if not self.modes[m].differentiable})
        if not_differentiable:
            raise ValueError(
                f"residual modes {not_differentiable} pass no gradient to the pixels: anonymization needs "
                f"an attributor whose columns use differentiable modes"
            )
        self.model = pipeline.attributor.model
        self.device = pipeline.residuals.device

    def codes(self, x: torch.Tensor, seeds: torch.Tensor) -> torch.Tensor:
        residuals = {
            name: mode(x, seeds) for name, mode in self.modes.items() if any(m == name for m, _, _ in self.columns)
        }
        features = torch.cat([self.spaces[space].embed(residuals[mode]) for mode, _, space in self.columns], dim=1)
        model = self.model.eval()
        mu_fp, _, _, _ = model.encode_standardised(model.standardise(features.to(next(model.parameters()).device)))
        return mu_fp
