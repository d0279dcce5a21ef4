"""Yu et al., "Attributing Fake Images to GANs: Learning and Analyzing GAN Fingerprints", ICCV 2019.

Their attribution network is a CNN trained with cross-entropy on the image pixels to name the source
(reported ~99 % closed-set over 5 sources). Ours: the same idea with the small shared trunk
(:class:`~causalprint.baselines._nets.ConvTrunk`, 4 conv blocks, ~27k parameters at the default width) instead of
their deeper network, sized so that the bench trains on a CPU.
"""

from __future__ import annotations

from causalprint.baselines._families import CNNBaseline

__all__ = ["Yu2019"]


class Yu2019(CNNBaseline):
    """Small CNN on ``image.rgb`` (reshaped to ``[N, 3, S, S]``), Adam + cross-entropy."""

    name = "yu2019"
    paper = "Yu, Davis, Fritz. Attributing Fake Images to GANs: Learning and Analyzing GAN Fingerprints. ICCV 2019"
    columns = ("image.rgb",)
    transform = "identity"
