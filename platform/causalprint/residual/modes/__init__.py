"""Residual modes, one small module each, listed in :mod:`causalprint.residual.registry`."""
