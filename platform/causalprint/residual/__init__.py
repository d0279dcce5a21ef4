"""The residual engine: a frozen reference diffusion model reconstructs an image; the residual keeps the traces."""
