"""Every generator family of the zoo: the family contract, seeding, round trips and that training learns."""

from __future__ import annotations

import math

import pytest
import torch

from causalprint.progress import ProgressLogger
from causalprint.zoo.base import GeneratorFamily, GeneratorSpec
from causalprint.zoo.generators.stylegan import _image_noise_seed
from causalprint.zoo.registry import GENERATORS, create_generator

ARCHS = GENERATORS.names()
GAN_ARCHS = ["dcgan", "wgan_gp", "stylegan", "sngan"]
EXPECTED_FAMILY = {
    "ddpm": "diffusion",
    "ddim": "diffusion",
    "ldm": "diffusion",
    "vae": "vae",
    **{a: "gan" for a in GAN_ARCHS},
}
SIZE = 16


def _spec(arch: str, **overrides) -> GeneratorSpec:
    fields = dict(
        name=f"t-{arch}",
        arch=arch,
        content_group="test",
        train_steps=3,
        batch_size=8,
        width=8,
        sample_steps=2,
        options={"ae_steps": 2} if arch == "ldm" else {},
    )
    return GeneratorSpec(**{**fields, **overrides})


def _fit(gen: GeneratorFamily, images: torch.Tensor) -> dict[str, float]:
    return gen.fit(images, ProgressLogger("test", gen.total_steps(), every_s=1e9))


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return torch.rand((24, 3, SIZE, SIZE), generator=torch.Generator().manual_seed(7)) * 2 - 1


@pytest.fixture(scope="module", params=ARCHS)
def trained(request: pytest.FixtureRequest, images: torch.Tensor) -> tuple[GeneratorFamily, dict[str, float]]:
    gen = create_generator(_spec(request.param), SIZE)
    return gen, _fit(gen, images)


def test_every_family_is_registered_with_its_kind() -> None:
    assert set(ARCHS) == set(EXPECTED_FAMILY)
    for arch in ARCHS:
        cls = GENERATORS.get(arch)
        assert issubclass(cls, GeneratorFamily) and cls.family == EXPECTED_FAMILY[arch]


def test_fit_returns_finite_metrics_and_reports_every_step(images: torch.Tensor) -> None:
    for arch in ARCHS:
        gen = create_generator(_spec(arch, train_steps=2), SIZE)
        progress = ProgressLogger("test", gen.total_steps(), every_s=1e9)
        metrics = gen.fit(images, progress)
        assert progress.done == gen.total_steps() and metrics
        if arch in GAN_ARCHS:
            assert {"loss_g", "loss_d"} <= metrics.keys()
        assert all(isinstance(v, float) and math.isfinite(v) for v in metrics.values()), (arch, metrics)


def test_modules_and_size(trained) -> None:
    gen, metrics = trained
    assert all(isinstance(v, float) and math.isfinite(v) for v in metrics.values())
    mods = gen.modules()
    assert set(gen.sampling_modules()) <= mods.keys() and gen.parameter_count() > 0
    if gen.family == "gan":
        assert {"generator", "discriminator"} <= mods.keys() and "discriminator" not in gen.sampling_modules()
        assert gen.parameter_count() < sum(p.numel() for m in mods.values() for p in m.parameters())


def test_sample_shape_range_dtype(trained) -> None:
    gen, _ = trained
    x = gen.sample(5, seed=1)
    assert x.shape == (5, 3, SIZE, SIZE) and x.dtype == torch.float32 and x.device.type == "cpu"
    assert x.min() >= -1 and x.max() <= 1 and x.std() > 0
    assert gen.sample(0, seed=1).shape == (0, 3, SIZE, SIZE)


def test_sampling_depends_only_on_seed(trained) -> None:
    gen, _ = trained
    a = gen.sample(7, seed=3)
    assert torch.equal(a, gen.sample(7, seed=3))
    # Batching changes nothing but the convolution kernels' float summation order.
    torch.testing.assert_close(gen.sample(7, seed=3, batch_size=2), a, rtol=0, atol=1e-5)
    assert not torch.equal(a, gen.sample(7, seed=4))
    assert not torch.equal(a[0], a[1])


def test_save_and_load_round_trip(trained, tmp_path) -> None:
    gen, _ = trained
    gen.save_pretrained(tmp_path)
    loaded = GENERATORS.get(gen.spec.arch).from_pretrained(tmp_path)
    assert type(loaded) is type(gen) and loaded.image_size == SIZE
    assert torch.equal(loaded.sample(6, seed=11), gen.sample(6, seed=11))


def test_training_is_deterministic(trained, images: torch.Tensor) -> None:
    gen, _ = trained
    again = create_generator(gen.spec, SIZE)
    _fit(again, images)
    assert torch.equal(again.sample(4, seed=0), gen.sample(4, seed=0))
    twin = create_generator(gen.spec.model_copy(update={"seed": 1}), SIZE)  # same arch, other seed
    _fit(twin, images)
    assert not torch.equal(twin.sample(4, seed=0), gen.sample(4, seed=0))


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("size", [8, 32])
def test_other_image_sizes(arch: str, size: int) -> None:
    gen = create_generator(_spec(arch, train_steps=1, batch_size=4), size)
    _fit(gen, torch.rand(4, 3, size, size) * 2 - 1)
    assert gen.sample(2, seed=0).shape == (2, 3, size, size)


@pytest.mark.parametrize("arch", [*GAN_ARCHS, "vae"])
def test_training_moves_samples_towards_the_data(arch: str) -> None:
    # Flat images of one colour: after a few dozen steps the samples' mean colour must be much nearer to it
    # (in trials over 8 seeds per family it fell to 3-45 % of the untrained distance, 63 % once with 2 threads).
    colour = torch.tensor([0.6, -0.5, 0.1]).view(1, 3, 1, 1)
    noise = torch.randn((64, 3, SIZE, SIZE), generator=torch.Generator().manual_seed(0))
    data = (colour + 0.05 * noise).clamp(-1, 1)
    gen = create_generator(_spec(arch, train_steps=40, batch_size=16, lr=2e-3), SIZE)

    def distance() -> float:
        return (gen.sample(64, seed=0).mean((0, 2, 3)) - colour.flatten()).abs().mean().item()

    before = distance()
    _fit(gen, data)
    assert distance() < 0.75 * before


def test_stylegan_noise_options_set_where_the_noise_strengths_start_and_whether_they_learn(images) -> None:
    default = create_generator(_spec("stylegan"), SIZE)
    noisy = create_generator(_spec("stylegan", options={"noise_init": 0.1}), SIZE)
    fixed = create_generator(_spec("stylegan", options={"noise_init": 0.05, "noise_learned": False}), SIZE)

    def strengths(gen: GeneratorFamily) -> list[float]:
        return [float(layer.noise_strength.detach()) for layer in gen.generator.layers]

    assert strengths(default) == [0.0] * len(default.generator.layers)
    assert strengths(noisy) == pytest.approx([0.1] * len(noisy.generator.layers))
    _fit(noisy, images)
    _fit(fixed, images)
    assert strengths(noisy) != pytest.approx([0.1] * len(noisy.generator.layers))  # learned: they move
    assert strengths(fixed) == [float(torch.tensor(0.05))] * len(fixed.generator.layers)  # fixed: exactly kept

    # The per-pixel noise reaches the image only when its strength is not zero.
    def noise_effect(gen: GeneratorFamily) -> float:
        w = gen.mapping(torch.randn(2, gen.z_dim, generator=torch.Generator().manual_seed(0)))
        a, b = (torch.randn(2, gen.generator.noise_numel, generator=torch.Generator().manual_seed(s)) for s in (1, 2))
        with torch.no_grad():
            return (gen.generator(w, a) - gen.generator(w, b)).abs().max().item()

    assert noise_effect(default) == 0.0 and noise_effect(fixed) > 1e-3


def test_stylegan_noise_init_per_layer_puts_noise_at_one_layer_only() -> None:
    one = [0.0, 0.0, 0.0, 0.0, 0.08]  # a 16x16 StyleGAN: 4x4, two at 8x8, two at 16x16
    gen = create_generator(_spec("stylegan", options={"noise_init": one, "noise_learned": False}), SIZE)
    assert [float(layer.noise_strength.detach()) for layer in gen.generator.layers] == [
        float(torch.tensor(v)) for v in one
    ]
    with pytest.raises(ValueError, match="names 3 strengths; a 16x16 StyleGAN has 5 styled layers"):
        create_generator(_spec("stylegan", options={"noise_init": [0.1, 0.0, 0.0]}), SIZE)


def test_stylegan_noise_random_draws_a_strength_per_image_and_layer_within_its_bounds() -> None:
    gen = create_generator(_spec("stylegan", options={"noise_random_max": 0.2, "noise_random_p": 0.25}), SIZE)
    assert all(
        float(layer.noise_strength) == 1.0 and not layer.noise_strength.requires_grad for layer in gen.generator.layers
    )  # the drawn strengths scale the maps themselves
    noise = gen._noise(400, torch.Generator().manual_seed(0))
    sizes = gen.generator.noise_sizes
    per_layer = torch.stack([part.std(dim=1) for part in noise.split([r * r for r in sizes], dim=1)], dim=1)
    # 4x4 maps hold 16 values, so their spread is loose; the larger maps pin the strength down.
    big = per_layer[:, [i for i, r in enumerate(sizes) if r >= 8]]
    assert 0.65 < (big == 0).float().mean() < 0.85  # each layer is off with probability 1 - p
    assert 0.2 * 0.8 < big.max() < 0.2 * 1.3 and big[big > 0].min() < 0.02  # strengths spread over [0, max)
    assert len({tuple((row > 0).tolist()) for row in per_layer}) > 20  # placements differ between images

    z = torch.randn(3, gen.z_dim, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        # Sampling draws each image's strengths from that image's own seed, so the image is the same alone or
        # in a batch; training draws them from its generator.
        own = torch.cat([gen._noise(1, torch.Generator().manual_seed(_image_noise_seed(5, 10 + i))) for i in range(3)])
        assert torch.allclose(gen.render(z, seed=5, start=10), gen.generator(gen.mapping(z), own), atol=1e-6)
        assert torch.allclose(gen.render(z[1:2], seed=5, start=11), gen.render(z, seed=5, start=10)[1:2], atol=1e-5)
        drawn = gen._noise(3, torch.Generator().manual_seed(2))
        assert torch.equal(gen.generate(z, torch.Generator().manual_seed(2)), gen.generator(gen.mapping(z), drawn))
        assert not torch.equal(drawn, gen._noise(3, torch.Generator().manual_seed(3)))


def test_stylegan_without_noise_random_draws_the_noise_it_always_drew() -> None:
    # The zoo's stored images of every other StyleGAN depend on it: plain N(0, 1) maps, one seed per image.
    gen = create_generator(_spec("stylegan"), SIZE)
    numel = gen.generator.noise_numel
    assert torch.equal(
        gen._noise(4, torch.Generator().manual_seed(7)),
        torch.randn((4, numel), generator=torch.Generator().manual_seed(7)),
    )
    z = torch.randn(2, gen.z_dim, generator=torch.Generator().manual_seed(1))
    before = torch.stack(
        [torch.randn(numel, generator=torch.Generator().manual_seed(_image_noise_seed(5, 3 + i))) for i in range(2)]
    )
    with torch.no_grad():
        assert torch.equal(gen.render(z, seed=5, start=3), gen.generator(gen.mapping(z), before))


@pytest.mark.parametrize(
    "options, message",
    [
        ({"noise_random_max": 0.1, "noise_init": 0.1}, "excludes noise_init"),
        ({"noise_random_max": 0.1, "noise_learned": False}, "excludes noise_init and noise_learned"),
        ({"noise_random_max": 0.0}, "noise_random_max > 0"),
        ({"noise_random_max": float("inf")}, "finite noise_random_max"),
        ({"noise_random_max": [0.1, 0.2]}, "are numbers"),
        ({"noise_random_max": 0.1, "noise_random_p": 1.5}, "0 < noise_random_p <= 1"),
        ({"noise_random_p": 0.5}, "needs noise_random_max"),
    ],
)
def test_stylegan_noise_random_refuses_bad_options(options: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        create_generator(_spec("stylegan", options=options), SIZE)
