"""One module per perturbation; each is registered in ``causalprint.perturbations.registry``."""
