"""Image perturbations (JPEG, resize, crop, blur, noise) for robustness tests and training augmentation."""

from causalprint.perturbations.apply import PerturbationSpec, perturb_batch, perturb_image
from causalprint.perturbations.registry import PERTURBATIONS, create_perturbation

__all__ = ["PERTURBATIONS", "PerturbationSpec", "create_perturbation", "perturb_batch", "perturb_image"]
