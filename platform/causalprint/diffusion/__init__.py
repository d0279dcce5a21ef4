"""Diffusion building blocks shared by the zoo's diffusion families and the reference model."""
