"""Measures of how well fingerprints tell sources apart."""

from causalprint.evaluation.separability import fisher_discriminant_ratio, linear_probe_accuracy

__all__ = ["fisher_discriminant_ratio", "linear_probe_accuracy"]
