"""Multi-scale random crops and photo groups."""

from __future__ import annotations

import numpy as np
import pytest

from causalprint.data.crops import CropConfig, random_crops
from causalprint.data.photos import PhotoSetConfig, PhotosUnavailableError, load_photo_groups


@pytest.fixture(scope="module")
def photos() -> dict[str, list[np.ndarray]]:
    return load_photo_groups(PhotoSetConfig())


def test_skimage_groups_are_disjoint_colour_photos(photos) -> None:
    assert set(photos) == {"objects", "scenes"}
    assert all(p.ndim == 3 and p.shape[2] == 3 and p.dtype == np.uint8 for g in photos.values() for p in g)


def test_crops_are_deterministic_and_distinct(photos) -> None:
    cfg = CropConfig()
    a = random_crops(photos["objects"], 16, 16, seed=3, config=cfg)
    b = random_crops(photos["objects"], 16, 16, seed=3, config=cfg)
    c = random_crops(photos["objects"], 16, 16, seed=4, config=cfg)
    assert a.shape == (16, 16, 16, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert len({crop.tobytes() for crop in a}) == 16


def test_crop_config_rejects_inverted_range() -> None:
    with pytest.raises(ValueError, match="min_side_frac"):
        CropConfig(min_side_frac=0.6, max_side_frac=0.2)


def test_missing_photo_folder_says_what_is_needed(tmp_path) -> None:
    cfg = PhotoSetConfig(source="folder", uri=str(tmp_path / "absent"), groups={"a": ["*"]})
    with pytest.raises(PhotosUnavailableError, match="shared/data/photos"):
        load_photo_groups(cfg)


def test_group_without_match_is_an_error(tmp_path) -> None:
    from PIL import Image

    Image.new("RGB", (40, 30), "red").save(tmp_path / "one.png")
    cfg = PhotoSetConfig(source="folder", uri=str(tmp_path), groups={"a": ["one.*"], "b": ["two-*"]})
    with pytest.raises(PhotosUnavailableError, match="group 'b'"):
        load_photo_groups(cfg)


def test_within_narrows_a_group_to_matching_files() -> None:
    objects = {"objects": ["astronaut.png", "chelsea.png", "coffee.png", "motorcycle_left.png"]}
    whole = load_photo_groups(PhotoSetConfig(groups=objects))["objects"]
    narrowed = load_photo_groups(PhotoSetConfig(groups=objects), within=["astro*", "coffee*"])["objects"]
    assert len(whole) == 4 and len(narrowed) == 2
    assert np.array_equal(narrowed[0], whole[0]) and np.array_equal(narrowed[1], whole[2])  # sorted by name


def test_within_that_leaves_a_group_empty_is_an_error() -> None:
    with pytest.raises(PhotosUnavailableError, match=r"group 'objects'.*narrowed to \['rocket\*'\]"):
        load_photo_groups(PhotoSetConfig(groups={"objects": ["astronaut.png"]}), within=["rocket*"])
