"""Why an image was refused: one exception type with a machine-readable kind and a human reason."""

from __future__ import annotations

from enum import StrEnum


class ImageErrorKind(StrEnum):
    """The kinds of refusal; values are stable strings stored in datasets and reports."""

    EMPTY = "empty"
    TOO_LARGE_BYTES = "too_large_bytes"
    TOO_MANY_PIXELS = "too_many_pixels"
    NOT_AN_IMAGE = "not_an_image"
    UNSUPPORTED_FORMAT = "unsupported_format"
    TRUNCATED = "truncated"
    CORRUPT = "corrupt"
    READ_FAILED = "read_failed"
    OUTSIDE_ROOT = "outside_root"  # a link whose target is outside the storage root: never read
    NOT_A_FILE = "not_a_file"  # a FIFO, socket or device: never opened


class ImageDecodeError(ValueError):
    """An input could not become a canonical image. ``str(e) == f"{uri}: {kind}: {reason}"``."""

    def __init__(self, uri: str, kind: ImageErrorKind, reason: str) -> None:
        self.uri = uri
        self.kind = ImageErrorKind(kind)
        self.reason = reason
        super().__init__(f"{uri}: {self.kind}: {reason}")

    def __reduce__(self) -> tuple[type[ImageDecodeError], tuple[str, ImageErrorKind, str]]:
        # The default reduce would replay args=(message,) into a three-argument __init__ (breaks Ray/pickle).
        return (type(self), (self.uri, self.kind, self.reason))
