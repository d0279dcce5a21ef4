"""Counterfactual source anonymization: move an image's fingerprint code to a counterfactual (the real class's
prototype by default) with the smallest pixel change, through the attributor's own differentiable path."""
