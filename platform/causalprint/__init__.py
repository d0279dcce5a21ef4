"""causalprint: attribute images to the generative model that made them, and remove that trace on request."""

__version__ = "0.1.0"
