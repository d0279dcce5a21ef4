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

    def features(self, x: torch.Tensor, seeds: torch.Tensor) -> torch.Tensor:
        """The attributor's raw input vectors ``[N, D]`` (residual feature columns, concatenated in order)."""
        residuals = {
            name: mode(x, seeds) for name, mode in self.modes.items() if any(m == name for m, _, _ in self.columns)
        }
        features = torch.cat([self.spaces[space].embed(residuals[mode]) for mode, _, space in self.columns], dim=1)
        return features.to(next(self.model.parameters()).device)

    def encode(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Raw input vectors -> ``(mu_fp, mu_c)``, the fingerprint and content codes' posterior means."""
        model = self.model.eval()
        mu_fp, _, mu_c, _ = model.encode_standardised(model.standardise(features))
        return mu_fp, mu_c

    def codes(self, x: torch.Tensor, seeds: torch.Tensor) -> torch.Tensor:
        return self.encode(self.features(x, seeds))[0]

    def counterfactual_features(self, features: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The raw input vectors the decoder gives when each row's fingerprint code is swapped for ``target`` (a unit
        prototype, scaled to the row's code norm) and its content code kept: the row plus the decoder's change, so
        what the decoder cannot reconstruct of the row stays as it was."""
        model = self.model.eval()
        mu_fp, mu_c = self.encode(features)
        swapped = target[None, :] * mu_fp.norm(dim=1, keepdim=True)
        change = model.destandardise(model.decode(swapped, mu_c)) - model.destandardise(model.decode(mu_fp, mu_c))
        return features + change
