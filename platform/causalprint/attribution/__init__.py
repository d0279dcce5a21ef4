"""Attribution: the causal decoupling model (fingerprint vs content codes) and open-set decisions over it."""

from causalprint.attribution.losses import hsic, kl_standard_normal
from causalprint.attribution.model import CausalDecoupler, Codes, DecouplerConfig, DecouplerOutput, fit_decoupler
from causalprint.attribution.openset import (
    Attribution,
    OpenSetAttributor,
    Prototypes,
    TemperatureScaler,
    auroc,
    choose_unknown_threshold,
    expected_calibration_error,
    oscr,
)

__all__ = [
    "Attribution",
    "CausalDecoupler",
    "Codes",
    "DecouplerConfig",
    "DecouplerOutput",
    "OpenSetAttributor",
    "Prototypes",
    "TemperatureScaler",
    "auroc",
    "choose_unknown_threshold",
    "expected_calibration_error",
    "fit_decoupler",
    "hsic",
    "kl_standard_normal",
    "oscr",
]
