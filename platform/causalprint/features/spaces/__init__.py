"""Feature spaces over the residual, one small module each, listed in :mod:`causalprint.features.registry`."""
