"""The errors a scan raises: a refusal the user can fix (wrong model, reference, source or output), and Ctrl-C."""

from __future__ import annotations


class ScanError(ValueError):
    """A scan was refused before any image was read; the message says what to change."""


class ScanInterrupted(KeyboardInterrupt):
    """Ctrl-C during a scan: the parts already written stay in the report, and a rerun goes on from them."""

    def __init__(self, images: int) -> None:
        self.images = images
        super().__init__(f"interrupted: {images} images in the report; rerun the same command to go on")
