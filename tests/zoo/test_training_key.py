"""The cache key of a trained generator: what changes it and what must not."""

from __future__ import annotations

import numpy as np

from causalprint.data.crops import CropConfig
from causalprint.jobs import job_config
from causalprint.zoo.base import GeneratorSpec
from causalprint.zoo.build import _training_key, config_key, training_images


def test_unset_photos_and_crops_leave_the_key_as_before_the_fields_existed() -> None:
    zoo = job_config("zoo build", "tiny", environ={}).zoo
    spec = zoo.generators[0]
    assert spec.photos is None and spec.crops is None
    legacy = spec.model_dump(mode="json")
    legacy.pop("photos")
    legacy.pop("crops")
    assert _training_key(zoo, spec) == config_key(
        legacy, zoo.image_size, zoo.photos, zoo.crops, zoo.train_crops_per_group, zoo.seed
    )


def test_a_photo_subset_is_another_instance() -> None:
    zoo = job_config("zoo build", "tiny", environ={}).zoo
    spec = zoo.generators[0]
    narrowed = GeneratorSpec(**{**spec.model_dump(), "photos": ["astronaut*"]})
    other = GeneratorSpec(**{**spec.model_dump(), "photos": ["coffee*"]})
    keys = {_training_key(zoo, s) for s in (spec, narrowed, other)}
    assert len(keys) == 3


def test_own_crop_scales_are_another_instance_trained_on_other_crops() -> None:
    zoo = job_config("zoo build", "tiny", environ={}).zoo
    spec = zoo.generators[0]
    wide = CropConfig(min_side_frac=0.6, max_side_frac=1.0)
    rescaled = GeneratorSpec(**{**spec.model_dump(), "crops": wide.model_dump()})
    assert _training_key(zoo, rescaled) != _training_key(zoo, spec)
    rng = np.random.default_rng(0)
    photos = {spec.content_group: [rng.integers(0, 256, (96, 128, 3), dtype=np.uint8)]}
    default, own = (training_images(zoo, spec.content_group, photos, crops) for crops in (None, wide))
    assert default.shape == own.shape == (zoo.train_crops_per_group, 3, zoo.image_size, zoo.image_size)
    assert not np.allclose(default.numpy(), own.numpy())
    # The zoo's own scales are what an unset override means.
    assert np.array_equal(default.numpy(), training_images(zoo, spec.content_group, photos, zoo.crops).numpy())


def test_the_bench_zoos_stored_keys_stay_what_its_builds_wrote() -> None:
    """A changed key silently retrains (hours for the bench zoo): these are the keys its stored sources carry."""
    from causalprint.zoo.build import _sampling_key, real_key

    zoo = job_config("zoo build", "bench", environ={}).zoo
    spec = {g.name: g for g in zoo.generators}
    assert _training_key(zoo, spec["dcgan"]) == "153f2d796953"
    assert _sampling_key(zoo, _training_key(zoo, spec["dcgan"])) == "ba223094199e"
    assert _sampling_key(zoo, _training_key(zoo, spec["stylegan-shift8b"])) == "3d28eef9dee7"
    assert real_key(zoo) == "6c13dbb9b4b5"
