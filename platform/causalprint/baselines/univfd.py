"""Ojha et al., "Towards Universal Fake Image Detectors that Generalize Across Generative Models", CVPR 2023.

UnivFD keeps a large pre-trained backbone frozen (CLIP ViT-L/14) and trains only a linear probe on its
features, which generalises to unseen generators far better than end-to-end training. Ours keeps the idea but
uses the frozen backbone the extraction already provides, EfficientNet-Lite0 with ImageNet weights
(``image.sl``, 1280-d), as no CLIP weights are available here; and it names the source instead of real/fake.
"""

from __future__ import annotations

from causalprint.baselines._families import LinearProbeBaseline
from causalprint.features.efficientnet import EMBED_DIM

__all__ = ["UnivFD"]


class UnivFD(LinearProbeBaseline):
    """``image.sl`` (frozen EfficientNet-Lite0 embedding) -> standardisation -> logistic regression."""

    name = "univfd"
    paper = "Ojha, Li, Lee. Towards Universal Fake Image Detectors that Generalize Across Generative Models. CVPR 2023"
    columns = ("image.sl",)

    @classmethod
    def expected_width(cls, column: str, width: int) -> str | None:
        return None if width == EMBED_DIM else f"{EMBED_DIM} (the EfficientNet-Lite0 embedding)"
