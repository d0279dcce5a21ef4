"""Sets of real photographs, grouped by content, that the zoo cuts its real crops from.

Two kinds of set: scikit-image's bundled sample photos (always present, used by the demo and the tests) and
any folder or bucket prefix of photos (the benchmark uses ``../shared/data/photos``). Groups have disjoint
content, so that the same architecture can be trained twice on different subject matter.
"""

from __future__ import annotations

import fnmatch
import functools
import io
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image, ImageOps
from pydantic import Field, model_validator

from causalprint.config import StrictModel
from causalprint.storage.config import StorageConfig

# Colour photographs shipped inside scikit-image, split by subject matter.
SKIMAGE_GROUPS: dict[str, list[str]] = {
    "objects": ["astronaut.png", "chelsea.png", "coffee.png", "motorcycle_left.png"],
    "scenes": ["rocket.jpg", "hubble_deep_field.jpg", "ihc.png", "retina.jpg"],
}
PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")


class PhotoSetConfig(StrictModel):
    """Where the photographs are and how they split into content groups (group -> file-name patterns)."""

    source: Literal["skimage", "folder"] = "skimage"
    uri: str | None = Field(default=None, description="folder or s3:// prefix, for source=folder")
    groups: dict[str, list[str]] = Field(default_factory=lambda: {g: list(v) for g, v in SKIMAGE_GROUPS.items()})
    max_pixels: int = Field(default=60_000_000, ge=1)

    @model_validator(mode="after")
    def _check(self) -> PhotoSetConfig:
        if self.source == "folder" and not self.uri:
            raise ValueError("photos.uri is required when photos.source is 'folder'")
        if len(self.groups) < 1 or any(not v for v in self.groups.values()):
            raise ValueError("photos.groups needs at least one group, each with at least one pattern")
        return self


class PhotosUnavailableError(FileNotFoundError):
    """The configured photographs are not where the config says."""


def _decode_photo(data: bytes, name: str, max_pixels: int) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as img:
        if img.width * img.height > max_pixels:
            raise ValueError(f"photo {name} has {img.width}x{img.height} pixels, over photos.max_pixels")
        return np.asarray(ImageOps.exif_transpose(img).convert("RGB"))


def _named_photos(config: PhotoSetConfig, storage: StorageConfig | None) -> dict[str, Callable[[], bytes]]:
    """File name -> a reader of its bytes, for every photograph of the set's source."""
    if config.source == "skimage":
        import skimage.data

        base = Path(skimage.data.data_dir)
        named = {p.name: p.read_bytes for p in base.iterdir() if p.suffix.lower() in PHOTO_SUFFIXES}
    else:
        from causalprint.storage import Storage

        try:
            store = Storage((storage or StorageConfig()).model_copy(update={"root": config.uri}))
            infos = store.list_files("", PHOTO_SUFFIXES)
        except Exception as exc:  # a missing local folder or bucket: say what is needed
            raise PhotosUnavailableError(f"cannot list photos at {config.uri}: {exc}") from exc
        named = {info.uri.rsplit("/", 1)[-1]: functools.partial(store.read_bytes, info.uri) for info in infos}
    if not named:
        raise PhotosUnavailableError(
            f"no photographs ({', '.join(PHOTO_SUFFIXES)}) found at {config.uri or 'scikit-image data'}; "
            "the benchmark preset expects the 22 photos of ../shared/data/photos (see its README), "
            "or set photos.uri to a folder of your own"
        )
    return named


def _group_names(named: Iterable[str], config: PhotoSetConfig, within: list[str] | None) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = {}
    for group, patterns in config.groups.items():
        names = sorted(
            n
            for n in named
            if any(fnmatch.fnmatch(n, p) for p in patterns)
            and (within is None or any(fnmatch.fnmatch(n, p) for p in within))
        )
        if not names:
            narrowed = f" narrowed to {within}" if within is not None else ""
            raise PhotosUnavailableError(f"photo group {group!r} matches no file for patterns {patterns}{narrowed}")
        groups[group] = names
    return groups


def photo_names(
    config: PhotoSetConfig, storage: StorageConfig | None = None, within: list[str] | None = None
) -> dict[str, list[str]]:
    """The file names of every content group (sorted), without decoding any photograph."""
    return _group_names(_named_photos(config, storage), config, within)


def load_photo_groups(
    config: PhotoSetConfig, storage: StorageConfig | None = None, within: list[str] | None = None
) -> dict[str, list[np.ndarray]]:
    """Decode every photograph, as RGB uint8 arrays, per content group (sorted by name for determinism).

    A folder source is read with ``storage``'s connection settings (endpoint, credentials) and its own root.
    ``within`` narrows every group to the files that also match one of these patterns.
    """
    named = _named_photos(config, storage)
    return {
        group: [_decode_photo(named[n](), n, config.max_pixels) for n in names]
        for group, names in _group_names(named, config, within).items()
    }
