"""The one error a scan raises for a refusal the user can fix (wrong model, reference, source or output)."""

from __future__ import annotations


class ScanError(ValueError):
    """A scan was refused before any image was read; the message says what to change."""
