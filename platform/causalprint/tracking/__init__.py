"""Experiment tracking and the model registry (MLflow, on a sqlite registry by default)."""
