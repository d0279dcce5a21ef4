"""Frank et al., "Leveraging Frequency Analysis for Deep Fake Image Recognition", ICML 2020.

Upsampling in generators leaves periodic traces that stand out in the log-scaled 2-D DCT spectrum; the paper
shows a linear classifier (ridge regression) on the standardised log-DCT spectrum already attributes GAN
images well, and a CNN on it does better. Ours is the linear variant, as multinomial logistic regression with
an L2 penalty (a softmax for probabilities instead of ridge regression's one-hot targets).
"""

from __future__ import annotations

from causalprint.baselines._families import LinearProbeBaseline

__all__ = ["Frank2020"]


class Frank2020(LinearProbeBaseline):
    """``image.dct`` (already ``log |DCT|``) -> per-coefficient standardisation (train mean/std) -> logistic
    regression."""

    name = "frank2020"
    paper = (
        "Frank, Eisenhofer, Schoenherr, Fischer, Kolossa, Holz. Leveraging Frequency Analysis for Deep Fake "
        "Image Recognition. ICML 2020"
    )
    columns = ("image.dct",)
