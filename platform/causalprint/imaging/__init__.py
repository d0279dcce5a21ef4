"""Image intake (untrusted bytes -> canonical arrays) and encoding (arrays -> reproducible files)."""

from causalprint.imaging.encode import EncodingConfig, encode_image, file_suffix, to_uint8
from causalprint.imaging.errors import ImageDecodeError, ImageErrorKind
from causalprint.imaging.intake import IntakeConfig, canonicalize, decode_image, to_rgb

__all__ = [
    "EncodingConfig",
    "ImageDecodeError",
    "ImageErrorKind",
    "IntakeConfig",
    "canonicalize",
    "decode_image",
    "encode_image",
    "file_suffix",
    "to_rgb",
    "to_uint8",
]
