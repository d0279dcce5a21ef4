"""The two trained families of baselines: a CNN on an image-shaped column, and a linear probe on a vector column.

Each concrete baseline is a few lines on top of one of these: its name, paper, column and defaults.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field
from torch import Tensor, nn

from causalprint.baselines._nets import CNNClassifier, LinearProbe, fit_classifier
from causalprint.baselines.base import Baseline, BaselineOptions, image_side

__all__ = ["CNNBaseline", "CNNOptions", "LinearProbeBaseline", "LinearProbeOptions"]


class CNNOptions(BaselineOptions):
    """Training of :class:`CNNBaseline`. The defaults (width 16, ~27k parameters; 8 epochs of minibatches of 64)
    are tuned for the bench, 10,000 rows of 32x32 images, so that it trains on a small CPU (the training time is
    in the evaluation section of ``docs/results.md``)."""

    width: int = Field(default=16, ge=1, description="channels of the first block; the trunk ends at 4 * width")
    epochs: int = Field(default=8, ge=1)
    batch_size: int = Field(default=64, ge=2)
    lr: float = Field(default=2e-3, gt=0)
    weight_decay: float = Field(default=1e-4, ge=0, description="L2 penalty on kernels and weights")


class CNNBaseline(Baseline):
    """A small CNN (:class:`~causalprint.baselines._nets.ConvTrunk`) trained with Adam + cross-entropy on one
    image-shaped column; ``transform`` is applied to the image before the trunk."""

    Options: ClassVar[type[BaselineOptions]] = CNNOptions
    options: CNNOptions
    transform: ClassVar[Literal["identity", "abs"]] = "identity"

    def _build(self, width: int, num_classes: int) -> nn.Module:
        side = image_side(width)
        if side is None:  # unreachable after expected_width, kept for a clear message
            raise ValueError(f"{self.name} needs 3*S*S features, got {width}")
        return CNNClassifier(side, self.options.width, num_classes, self.transform)

    def _train(self, module: nn.Module, x: Tensor, y: Tensor) -> list[dict[str, float]]:
        o = self.options
        return fit_classifier(
            module,
            x,
            y,
            epochs=o.epochs,
            batch_size=o.batch_size,
            lr=o.lr,
            weight_decay=o.weight_decay,
            seed=o.seed,
            label=self.name,
        )


class LinearProbeOptions(BaselineOptions):
    """Training of :class:`LinearProbeBaseline`: minibatch Adam on the convex multinomial logistic loss. The
    default ``weight_decay`` 1e-4 is scikit-learn's ``C=1`` at 10,000 rows (``1 / (C N)``); a few seconds on
    the bench."""

    epochs: int = Field(default=30, ge=1)
    batch_size: int = Field(default=256, ge=2)
    lr: float = Field(default=3e-3, gt=0)
    weight_decay: float = Field(default=1e-4, ge=0, description="L2 penalty on the weights (not the bias)")


class LinearProbeBaseline(Baseline):
    """Standardise the column with train statistics, then multinomial logistic regression (in torch)."""

    Options: ClassVar[type[BaselineOptions]] = LinearProbeOptions
    options: LinearProbeOptions

    def _build(self, width: int, num_classes: int) -> nn.Module:
        return LinearProbe(width, num_classes)

    def _train(self, module: nn.Module, x: Tensor, y: Tensor) -> list[dict[str, float]]:
        if not isinstance(module, LinearProbe):
            raise TypeError(f"{self.name} trains a LinearProbe, got {type(module).__name__}")
        module.set_scaler(x.to(module.mean.device))
        o = self.options
        return fit_classifier(
            module,
            x,
            y,
            epochs=o.epochs,
            batch_size=o.batch_size,
            lr=o.lr,
            weight_decay=o.weight_decay,
            seed=o.seed,
            label=self.name,
        )
