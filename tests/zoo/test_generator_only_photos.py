"""Content groups that only generators train on: config checks, cache keys, and a build whose real class
holds none of that content."""

from __future__ import annotations

import numpy as np
import pytest

from causalprint.config import ConfigError, build_config
from causalprint.data.photos import load_photo_groups
from causalprint.jobs import job_config
from causalprint.jobs.zoo_build import ZooJobConfig
from causalprint.presets import load_preset
from causalprint.zoo.build import _training_key
from causalprint.zoo.config import ZooConfig

TEXTURES = {"source": "skimage", "groups": {"textures": ["brick.png", "grass.png", "gravel.png"]}}


def _tiny_with_textures(patterns: list[str] | None = None) -> ZooConfig:
    """The tiny zoo's real class and its first two generators, plus a dcgan trained on grayscale textures
    (``patterns`` narrows the textures group)."""
    raw = load_preset("zoo", "tiny")["zoo"]
    spec = {**raw["generators"][0], "name": "dcgan-sk", "seed": 7, "content_group": "textures"}
    photos = {**TEXTURES, "groups": {"textures": patterns}} if patterns else TEXTURES
    raw = {**raw, "generators": [*raw["generators"][:2], spec], "generator_only_photos": photos}
    return build_config(ZooJobConfig, {"zoo": raw}, environ={}).zoo


def test_a_generator_only_group_changes_no_other_generators_key() -> None:
    plain, extended = job_config("zoo build", "tiny", environ={}).zoo, _tiny_with_textures()
    for spec in extended.generators[:2]:
        assert _training_key(extended, spec) == _training_key(plain, spec)
    spec = extended.generators[2]
    other_photos = _tiny_with_textures(["brick.png"])
    assert _training_key(other_photos, spec) != _training_key(extended, spec)


def test_photo_set_narrows_to_the_group_that_holds_it() -> None:
    zoo = _tiny_with_textures()
    assert zoo.content_groups == ["objects", "scenes", "textures"]
    assert zoo.is_generator_only("textures") and not zoo.is_generator_only("objects")
    assert zoo.photo_set("textures").groups == TEXTURES["groups"]
    assert zoo.photo_set("scenes").groups == {"scenes": zoo.photos.groups["scenes"]}
    with pytest.raises(KeyError, match="no content group 'sky'"):
        zoo.photo_set("sky")
    photos = load_photo_groups(zoo.photo_set("textures"))["textures"]
    assert len(photos) == 3 and all(p.ndim == 3 and p.shape[2] == 3 for p in photos)


def test_a_generator_trains_on_its_generator_only_photos(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    from causalprint.storage import Storage, StorageConfig
    from causalprint.zoo import build

    seen: list[np.ndarray] = []

    def spy(zoo, group, photos, crops=None):
        images = real_training_images(zoo, group, photos, crops)
        seen.append(images.numpy())
        return images

    real_training_images = build.training_images
    monkeypatch.setattr(build, "training_images", spy)
    zoo = _tiny_with_textures()
    _, info = build.train_or_load(Storage(StorageConfig(root=str(tmp_path))), zoo, zoo.generators[2])
    assert info["content_group"] == "textures" and not info["reused_weights"]
    # The textures are grayscale: equal channels, unlike every photo of the real class's groups.
    (crops,) = seen
    assert np.allclose(crops[:, 0], crops[:, 1]) and np.allclose(crops[:, 1], crops[:, 2])


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"generator_only_photos": {"groups": {"objects": ["brick.png"]}}}, r"\['objects'\] are also photos.groups"),
        ({"content_group": "sky"}, r"content_group 'sky' is not one of photos.groups or generator_only_photos"),
    ],
)
def test_bad_generator_only_groups_are_refused(change: dict, words: str) -> None:
    raw = load_preset("zoo", "tiny")["zoo"]
    if "content_group" in change:
        raw["generators"][0]["content_group"] = change["content_group"]
    else:
        raw.update(change)
    with pytest.raises(ConfigError, match=words):
        build_config(ZooJobConfig, {"zoo": raw}, environ={})


def test_a_generator_only_group_of_photos_the_real_class_cuts_is_refused(tmp_path) -> None:
    from causalprint.storage import Storage, StorageConfig
    from causalprint.zoo.build import build_zoo

    raw = load_preset("zoo", "tiny")["zoo"]  # its real groups are scikit-image photos too
    raw["generator_only_photos"] = {"source": "skimage", "groups": {"again": ["coffee.png", "brick.png"]}}
    zoo = build_config(ZooJobConfig, {"zoo": raw}, environ={}).zoo
    with pytest.raises(ValueError, match=r"the real class cuts too: \{'again': \['coffee.png'\]\}"):
        build_zoo(Storage(StorageConfig(root=str(tmp_path))), zoo)
    assert not any(tmp_path.iterdir())  # refused before anything was written


def test_the_table_says_what_a_generator_only_source_was_measured_against() -> None:
    from causalprint.zoo.report import format_zoo_table

    report = {
        "sources": {
            "dcgan-sk": {
                "family": "gan",
                "arch": "dcgan",
                "content_group": "textures",
                "kid": 0.3,
                "kid_std": 0.01,
                "kid_reference": "crops/textures",
            },
            "dcgan": {
                "family": "gan",
                "arch": "dcgan",
                "content_group": "objects",
                "kid": 0.2,
                "kid_std": 0.01,
                "kid_reference": "real/heldout/objects",
            },
        },
        "quality_floor": {
            "objects": {"kid": 0.0, "kid_std": 0.001, "reference": "real/heldout/objects"},
            "textures": {"kid": 0.0, "kid_std": 0.001, "reference": "crops/textures"},
        },
    }
    lines = format_zoo_table(report).splitlines()
    assert next(line for line in lines if line.startswith("| dcgan-sk ")).endswith("| 300.0 ± 10.0 (to crops) |")
    assert next(line for line in lines if line.startswith("| dcgan ")).endswith("| 200.0 ± 10.0 |")
    assert any(line.startswith("| crops-vs-crops floor (textures) |") for line in lines)
    assert any(line.startswith("| real-vs-real floor (objects) |") for line in lines)


@pytest.mark.slow
def test_build_trains_on_the_group_while_the_real_class_holds_none_of_it(ray_session: None, tmp_path) -> None:
    from causalprint.storage import Storage, StorageConfig
    from causalprint.zoo.build import build_zoo
    from causalprint.zoo.manifest import read_manifest

    zoo = _tiny_with_textures()
    storage = Storage(StorageConfig(root=str(tmp_path / "store")))
    report = build_zoo(storage, zoo)
    rows = read_manifest(storage, report["manifest"]).to_pylist()
    real_groups = {r["content_group"] for r in rows if r["source"] == "real"}
    assert real_groups == {"objects", "scenes"}
    assert {r["content_group"] for r in rows if r["source"] == "dcgan-sk"} == {"textures"}
    sk = report["sources"]["dcgan-sk"]
    assert sk["content_group"] == "textures" and sk["kid_reference"] == "crops/textures" and np.isfinite(sk["kid"])
    assert set(report["quality_floor"]) == {"objects", "scenes", "textures"}
    assert report["quality_floor"]["textures"]["reference"] == "crops/textures"
    assert report["quality_floor"]["objects"]["reference"] == "real/heldout/objects"
