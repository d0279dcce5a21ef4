"""Wang et al., "DIRE for Diffusion-Generated Image Detection", ICCV 2023.

DIRE reconstructs the image by DDIM inversion + DDIM sampling with a pre-trained ADM (20 steps each way) and
trains a ResNet-50 on the absolute residual ``|x - x_hat|``. Ours: the residual comes from our own reference
diffusion model (the extraction's ``dire.rgb`` column), and the classifier is the same small trunk as
:mod:`~causalprint.baselines.yu2019` rather than a ResNet-50, so that the two baselines differ only in their
input and the bench trains on CPU; DIRE was a real/fake detector, here it names the source.
"""

from __future__ import annotations

from causalprint.baselines._families import CNNBaseline

__all__ = ["Dire"]


class Dire(CNNBaseline):
    """Small CNN on ``|dire.rgb|`` (the absolute DIRE residual, as in the paper), Adam + cross-entropy."""

    name = "dire"
    paper = "Wang, Bao, Zhou, Wang, Hu, Chen, Li. DIRE for Diffusion-Generated Image Detection. ICCV 2023"
    columns = ("dire.rgb",)
    transform = "abs"
