"""Perturbations: shapes and dtypes kept, reproducible per image, strength ordered, mixes chosen by URI."""

from __future__ import annotations

import numpy as np
import pytest

from causalprint.perturbations import PERTURBATIONS, PerturbationSpec, create_perturbation, perturb_batch, perturb_image


@pytest.fixture()
def image() -> np.ndarray:
    y, x = np.mgrid[0:32, 0:32]
    base = np.stack([x * 8, y * 8, (x ^ y) * 8], axis=-1)  # structure at every frequency
    return np.clip(base, 0, 255).astype(np.uint8)


@pytest.mark.parametrize("name", PERTURBATIONS.names())
def test_every_perturbation_keeps_shape_and_dtype(name: str, image: np.ndarray) -> None:
    out = create_perturbation(name)(image, np.random.default_rng(0))
    assert out.shape == image.shape and out.dtype == np.uint8


@pytest.mark.parametrize("name", [n for n in PERTURBATIONS.names() if n != "none"])
def test_every_real_perturbation_changes_the_image(name: str, image: np.ndarray) -> None:
    out = create_perturbation(name)(image, np.random.default_rng(0))
    assert np.abs(out.astype(int) - image).mean() > 0.1


def test_lower_jpeg_quality_loses_more(image: np.ndarray) -> None:
    errors = [
        np.abs(create_perturbation("jpeg", quality=q)(image, np.random.default_rng(0)).astype(int) - image).mean()
        for q in (95, 75, 50)
    ]
    assert errors[0] < errors[1] < errors[2]


def test_noise_has_the_requested_sigma() -> None:
    flat = np.full((64, 64, 3), 128, np.uint8)
    out = create_perturbation("noise", sigma=2.0)(flat, np.random.default_rng(0)).astype(float) - 128
    assert abs(out.std() - 2.0) < 0.1 and abs(out.mean()) < 0.1


def test_same_uri_same_result_other_uri_other_noise(image: np.ndarray) -> None:
    spec = [PerturbationSpec(name="noise", options={"sigma": 3})]
    a, label = perturb_image(image, "s3://b/x.png", spec)
    b, _ = perturb_image(image, "s3://b/x.png", spec)
    c, _ = perturb_image(image, "s3://b/y.png", spec)
    assert label == "noise(sigma=3)" and np.array_equal(a, b) and not np.array_equal(a, c)


def test_a_mix_gives_each_image_one_member_by_its_uri(image: np.ndarray) -> None:
    mix = [
        PerturbationSpec(name="none"),
        PerturbationSpec(name="jpeg", options={"quality": 50}),
        PerturbationSpec(name="blur", options={"sigma": 1}),
    ]
    labels = [perturb_image(image, f"img-{i}.png", mix)[1] for i in range(60)]
    assert set(labels) == {"none", "jpeg(quality=50)", "blur(sigma=1)"}
    assert labels == [perturb_image(image, f"img-{i}.png", mix)[1] for i in range(60)]


def test_batch_leaves_error_rows_alone(image: np.ndarray) -> None:
    batch = {
        "uri": np.array(["a.png", "bad.png"], dtype=object),
        "ok": np.array([True, False]),
        "image": np.stack([image, np.zeros_like(image)]),
    }
    out = perturb_batch(batch, [PerturbationSpec(name="jpeg", options={"quality": 50})])
    assert out["perturbation"].tolist() == ["jpeg(quality=50)", ""]
    assert not np.array_equal(out["image"][0], image) and not out["image"][1].any()
    assert np.array_equal(batch["image"][0], image)  # the input batch is not modified in place


@pytest.mark.parametrize(
    "name, options, message",
    [
        ("jpeg", {"quality": 0}, "quality"),
        ("resize", {"scale": 2}, "scale"),
        ("blur", {"sigma": -1}, "sigma"),
        ("noise", {"sigma": 2, "mean": 1}, "unknown options"),
        ("center_crop", {"fraction": 1.5}, "fraction"),
    ],
)
def test_bad_options_are_refused(name: str, options: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        create_perturbation(name, **options)


def test_unknown_perturbation_is_refused() -> None:
    with pytest.raises(Exception, match="sharpen"):
        create_perturbation("sharpen")
