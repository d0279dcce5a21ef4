"""The cache key of a trained generator: what changes it and what must not."""

from __future__ import annotations

from causalprint.zoo.base import GeneratorSpec
from causalprint.zoo.build import _training_key, config_key
from causalprint.zoo.config import load_zoo_job


def test_unset_photos_leaves_the_key_as_before_the_field_existed() -> None:
    zoo = load_zoo_job("tiny", environ={}).zoo
    spec = zoo.generators[0]
    assert spec.photos is None
    legacy = spec.model_dump(mode="json")
    legacy.pop("photos")
    assert _training_key(zoo, spec) == config_key(legacy, zoo.image_size, zoo.photos, zoo.crops,
                                                  zoo.train_crops_per_group, zoo.seed)


def test_a_photo_subset_is_another_instance() -> None:
    zoo = load_zoo_job("tiny", environ={}).zoo
    spec = zoo.generators[0]
    narrowed = GeneratorSpec(**{**spec.model_dump(), "photos": ["astronaut*"]})
    other = GeneratorSpec(**{**spec.model_dump(), "photos": ["coffee*"]})
    keys = {_training_key(zoo, s) for s in (spec, narrowed, other)}
    assert len(keys) == 3
