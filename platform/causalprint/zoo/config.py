"""The zoo's typed configuration and its named presets (``presets/<name>.yaml``)."""

from __future__ import annotations

from collections import Counter

from pydantic import Field, model_validator

from causalprint.config import StrictModel
from causalprint.data.crops import CropConfig
from causalprint.data.photos import PhotoSetConfig
from causalprint.imaging.encode import EncodingConfig
from causalprint.zoo.base import GeneratorSpec
from causalprint.zoo.quality import QualityConfig
from causalprint.zoo.registry import GENERATORS

REAL_SOURCE = "real"


class ZooConfig(StrictModel):
    """Everything that defines a zoo: photos, crops, generators, sample counts and the final encoding."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    image_size: int = Field(ge=8, le=256)
    photos: PhotoSetConfig = PhotoSetConfig()
    generator_only_photos: PhotoSetConfig | None = Field(
        default=None,
        description="more content groups that only generators train on: the real class cuts no "
        "crop of them, so their content reaches training only through the generators trained on it",
    )
    crops: CropConfig = CropConfig()
    train_crops_per_group: int = Field(ge=8, description="real crops each generator trains on")
    splits: dict[str, int] = Field(default_factory=lambda: {"train": 1000, "heldout": 1000})
    generators: list[GeneratorSpec]
    encoding: EncodingConfig = EncodingConfig()
    quality: QualityConfig = QualityConfig()
    seed: int = 0
    cpus_per_task: float = Field(default=1.0, gt=0)

    @model_validator(mode="after")
    def _check(self) -> ZooConfig:
        if self.image_size & (self.image_size - 1):
            raise ValueError(f"image_size must be a power of two, got {self.image_size}")
        if any(n < 1 for n in self.splits.values()) or not self.splits:
            raise ValueError("splits must name at least one split, each with at least 1 image")
        counts = Counter(g.name for g in self.generators)
        dupes = sorted(n for n, c in counts.items() if c > 1)
        if dupes:
            raise ValueError(f"generator names must be unique; repeated: {dupes}")
        if REAL_SOURCE in counts:
            raise ValueError(f"{REAL_SOURCE!r} is the real class and cannot name a generator")
        if self.generator_only_photos is not None:
            shared = sorted(set(self.photos.groups) & set(self.generator_only_photos.groups))
            if shared:
                raise ValueError(
                    f"generator_only_photos groups {shared} are also photos.groups; a group is one or the other"
                )
        for spec in self.generators:
            if spec.arch not in GENERATORS:
                raise ValueError(f"generator {spec.name}: unknown arch {spec.arch!r}; known: {GENERATORS.names()}")
            if spec.content_group not in self.content_groups:
                raise ValueError(
                    f"generator {spec.name}: content_group {spec.content_group!r} is not one of "
                    f"photos.groups or generator_only_photos.groups {sorted(self.content_groups)}"
                )
        return self

    @property
    def content_groups(self) -> list[str]:
        """Every content group a generator may train on: the real class's, then the generator-only ones."""
        extra = self.generator_only_photos
        return [*self.photos.groups, *(extra.groups if extra is not None else {})]

    def is_generator_only(self, group: str) -> bool:
        """Whether ``group`` is content that the real class holds no crop of."""
        return self.generator_only_photos is not None and group in self.generator_only_photos.groups

    def photo_set(self, group: str) -> PhotoSetConfig:
        """The photo set that holds ``group``, narrowed to that group alone."""
        if group not in self.content_groups:
            raise KeyError(f"no content group {group!r}; known: {self.content_groups}")
        extra = self.generator_only_photos
        owner = extra if extra is not None and group in extra.groups else self.photos
        return owner.model_copy(update={"groups": {group: owner.groups[group]}})

    @property
    def prefix(self) -> str:
        """Root-relative folder of this zoo in storage."""
        return f"zoo/{self.name}"

    @property
    def sources(self) -> list[str]:
        return [REAL_SOURCE, *(g.name for g in self.generators)]
