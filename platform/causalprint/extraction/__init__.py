"""Extraction: images -> residuals -> feature vectors, as a resumable Ray Data pipeline."""
