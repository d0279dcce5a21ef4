"""The causal decoupler on data with a known causal structure: x = A[source] + B @ content + noise, with the
content drawn independently of the source. A good fit names the source from z_fp, keeps the source out of z_c,
and a fingerprint swap gives the true counterfactual A[donor] + B @ content_recipient."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from pydantic import ValidationError
from sklearn.linear_model import LogisticRegression, Ridge

from causalprint.attribution import CausalDecoupler, Codes, DecouplerConfig, fit_decoupler
from causalprint.attribution.model import architecture_names

D, K, CONTENT = 32, 4, 4


@dataclass
class Data:
    A: np.ndarray  # [K, D] source offsets
    B: np.ndarray  # [CONTENT, D] content loadings
    x: np.ndarray
    y: np.ndarray
    c: np.ndarray  # the true content factor


def _draw(rng: np.random.Generator, A: np.ndarray, B: np.ndarray, n: int) -> Data:
    y = rng.integers(0, K, n)
    c = rng.normal(size=(n, CONTENT))
    x = A[y] + c @ B + 0.3 * rng.normal(size=(n, D))
    return Data(A, B, x.astype(np.float32), y, c)


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """Tiny models train faster on one thread, and do not fight a busy machine for cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def data() -> tuple[Data, Data]:
    rng = np.random.default_rng(0)
    A, B = 0.7 * rng.normal(size=(K, D)), rng.normal(size=(CONTENT, D))
    return _draw(rng, A, B, 1000), _draw(rng, A, B, 600)


def _config(**weights: float) -> DecouplerConfig:
    return DecouplerConfig(input_dim=D, num_classes=K, fp_dim=8, content_dim=8, hidden=64, **weights)


@pytest.fixture(scope="module")
def model(data: tuple[Data, Data]) -> CausalDecoupler:
    train, _ = data
    return fit_decoupler(train.x, train.y, _config(), epochs=80, batch_size=128, lr=3e-3, seed=0, device="cpu")


def _probe(train_codes: np.ndarray, train_y: np.ndarray, test_codes: np.ndarray, test_y: np.ndarray) -> float:
    return LogisticRegression(max_iter=2000).fit(train_codes, train_y).score(test_codes, test_y)


def test_classifier_is_accurate_on_held_out_data(model: CausalDecoupler, data: tuple[Data, Data]) -> None:
    _, test = data
    assert np.mean(model.predict(test.x) == test.y) > 0.9
    proba = model.predict_proba(test.x)
    assert proba.shape == (len(test.x), K) and np.allclose(proba.sum(1), 1.0, atol=1e-5)


def test_source_lives_in_z_fp_and_not_in_z_content(model: CausalDecoupler, data: tuple[Data, Data]) -> None:
    train, test = data
    tr, te = model.predict_codes(train.x), model.predict_codes(test.x)
    assert _probe(tr.fp, train.y, te.fp, test.y) > 0.9
    assert _probe(tr.content, train.y, te.content, test.y) < 0.4  # chance is 0.25
    # ... while z_c does carry the content, and z_fp does not.
    assert Ridge().fit(tr.content, train.c).score(te.content, test.c) > 0.9
    assert Ridge().fit(tr.fp, train.c).score(te.fp, test.c) < 0.2


def test_without_independence_terms_the_source_leaks_into_z_content(data: tuple[Data, Data]) -> None:
    """The control for the test above: the same fit without HSIC, adversary or swap leaves the source in z_c."""
    train, test = data
    plain = fit_decoupler(
        train.x,
        train.y,
        _config(w_hsic=0.0, w_adv=0.0, w_swap=0.0),
        epochs=40,
        batch_size=128,
        lr=3e-3,
        seed=0,
        device="cpu",
    )
    tr, te = plain.predict_codes(train.x), plain.predict_codes(test.x)
    assert _probe(tr.content, train.y, te.content, test.y) > 0.6


def test_fingerprint_swap_gives_the_donor_source_and_keeps_the_content(
    model: CausalDecoupler, data: tuple[Data, Data]
) -> None:
    _, test = data
    rng = np.random.default_rng(1)
    donor = rng.permutation(len(test.x))
    differ = test.y[donor] != test.y
    codes = model.predict_codes(test.x)
    x_cf = model.counterfactual(test.x, codes.fp[donor])
    assert np.mean(model.predict(x_cf)[differ] == test.y[donor][differ]) > 0.9
    # The true counterfactual under do(source = donor's) with the recipient's content held fixed.
    truth = test.A[test.y[donor]] + test.c @ test.B
    err_cf = np.linalg.norm(x_cf - truth, axis=1)[differ].mean()
    err_factual = np.linalg.norm(test.x - truth, axis=1)[differ].mean()
    assert err_cf < 0.5 * err_factual
    # The content code survives the swap.
    content_after = model.predict_codes(x_cf).content
    assert np.mean(np.linalg.norm(content_after - codes.content, axis=1)) < 0.5 * np.mean(
        np.linalg.norm(codes.content[donor] - codes.content, axis=1)
    )


def test_forward_shapes_loss_terms_and_eval_determinism() -> None:
    torch.manual_seed(0)
    cfg = _config(w_adv=0.5)
    net = CausalDecoupler(cfg)
    x, y = torch.randn(10, D), torch.arange(10) % K
    out = net(x)
    assert out.x_std.shape == out.recon.shape == (10, D)
    assert out.z_fp.shape == out.mu_fp.shape == out.logvar_fp.shape == (10, cfg.fp_dim)
    assert out.z_c.shape == out.mu_c.shape == (10, cfg.content_dim) and out.logits.shape == (10, K)
    assert not torch.equal(out.z_fp, out.mu_fp)  # training mode samples
    terms = net.loss(x, y)
    expected = {"cls", "rec", "kl", "hsic", "adv", "arch", "swap_cls", "swap_content", "swap_rec", "swap", "total"}
    assert set(terms) == expected and all(torch.isfinite(v) for v in terms.values())
    terms["total"].backward()
    assert net.adversary is not None and net.adversary.weight.grad is not None
    net.eval()
    a, b = net(x), net(x)
    assert torch.equal(a.z_fp, a.mu_fp) and torch.equal(a.logits, b.logits)
    with pytest.raises(ValueError, match="labels"):
        net.loss(x, y + K)
    with pytest.raises(ValueError, match=r"\[N, 32\]"):
        net(torch.randn(3, D + 1))


def test_config_is_strict() -> None:
    with pytest.raises(ValidationError):
        DecouplerConfig(input_dim=4, num_classes=2, surprise=1)
    with pytest.raises(ValidationError, match="class_names"):
        DecouplerConfig(input_dim=4, num_classes=2, class_names=["a"])
    with pytest.raises(ValidationError, match="architectures"):
        DecouplerConfig(input_dim=4, num_classes=2, architectures=["a"])
    cfg = DecouplerConfig(input_dim=4, num_classes=2)
    with pytest.raises(ValidationError):
        cfg.fp_dim = 3  # frozen


def test_save_load_round_trip(model: CausalDecoupler, data: tuple[Data, Data], tmp_path, caplog) -> None:
    _, test = data
    model.save_pretrained(tmp_path)
    assert {p.name for p in tmp_path.iterdir()} == {"config.json", "model.safetensors", "extras.json"}
    loaded = CausalDecoupler.from_pretrained(tmp_path)
    assert loaded.config == model.config and not loaded.training
    assert torch.equal(loaded.x_mean, model.x_mean) and torch.equal(loaded.x_std, model.x_std)
    a, b = model.predict_codes(test.x), loaded.predict_codes(test.x)
    np.testing.assert_array_equal(a.fp, b.fp)
    np.testing.assert_array_equal(a.content, b.content)
    np.testing.assert_array_equal(a.logits, b.logits)
    assert loaded.extras["history"] == model.extras["history"]
    # A config from a newer version: unknown keys are dropped with a warning, not an error.
    config = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**config, "from_the_future": 1}))
    with caplog.at_level(logging.WARNING, logger="causalprint.attribution.model"):
        CausalDecoupler.from_pretrained(tmp_path)
    assert "from_the_future" in caplog.text


def test_projection_compresses_the_input_and_still_attributes(data: tuple[Data, Data], tmp_path) -> None:
    train, test = data
    config = _config().model_copy(update={"projection_dim": 12})
    model = fit_decoupler(train.x, train.y, config, epochs=60, batch_size=128, lr=3e-3, seed=0, device="cpu")
    proj = model.x_proj
    assert proj.shape == (D, 12) and torch.allclose(proj.T @ proj, torch.eye(12), atol=1e-4)
    assert model.encoder[0].in_features == 12 and model.decode(torch.zeros(1, 8), torch.zeros(1, 8)).shape == (1, 12)
    assert np.mean(model.predict(test.x) == test.y) > 0.9
    # Inside the subspace, destandardise inverts standardise exactly.
    x = torch.from_numpy(test.x[:5])
    inside = model.destandardise(model.standardise(x))
    assert torch.allclose(model.standardise(inside), model.standardise(x), atol=1e-4)
    model.save_pretrained(tmp_path / "m")
    again = CausalDecoupler.from_pretrained(tmp_path / "m")
    assert np.array_equal(again.predict_proba(test.x), model.predict_proba(test.x))


def test_projection_needs_enough_rows() -> None:
    config = _config().model_copy(update={"projection_dim": 20})
    with pytest.raises(ValueError, match="at least that many train rows"):
        CausalDecoupler(config).fit_input_statistics(torch.randn(10, D))


ARCHS = ["gan", "gan", "diffusion", "vae"]  # classes 0 and 1: two instances of one architecture


def test_architecture_head_names_the_architecture_and_round_trips(data: tuple[Data, Data], tmp_path) -> None:
    train, test = data
    config = _config().model_copy(update={"architectures": ARCHS})
    model = fit_decoupler(train.x, train.y, config, epochs=60, batch_size=128, lr=3e-3, seed=0, device="cpu")
    assert model.arch_names == ["diffusion", "gan", "vae"] and model.arch_head is not None
    truth = np.array(ARCHS, dtype=object)[test.y]
    predicted = model.predict_architecture(test.x)
    assert np.mean(predicted == truth) > 0.9
    codes = model.predict_codes(test.x[:3])
    assert codes.arch_logits.shape == (3, 3)
    probs = model.architecture_probabilities(codes, temperature=5.0)  # the temperature is for class logits only
    np.testing.assert_allclose(probs.sum(1), 1.0, rtol=1e-6)
    assert np.array_equal(probs.argmax(1), codes.arch_logits.argmax(1))
    model.save_pretrained(tmp_path / "m")
    again = CausalDecoupler.from_pretrained(tmp_path / "m")
    assert np.array_equal(again.predict_architecture(test.x), predicted)


def test_the_architecture_list_and_the_head_rule() -> None:
    assert architecture_names(["vae", "gan", "gan", "diffusion"]) == ["diffusion", "gan", "vae"]
    assert architecture_names(None) == architecture_names([]) == []
    cases = {(None, 1.0): False, (("gan",) * K, 1.0): False, (tuple(ARCHS), 0.0): False, (tuple(ARCHS), 1.0): True}
    for (archs, w_arch), built in cases.items():
        config = _config(w_arch=w_arch).model_copy(update={"architectures": list(archs) if archs else None})
        assert config.has_architecture_head is built
        assert (CausalDecoupler(config).arch_head is not None) is built
    assert "has_architecture_head" not in _config().model_dump()  # config.json keys are unchanged


def test_without_an_architecture_head_pooled_class_probabilities_name_it() -> None:
    torch.manual_seed(0)
    no_head = CausalDecoupler(_config(w_arch=0.0).model_copy(update={"architectures": ARCHS}))
    with torch.no_grad():
        assert no_head.arch_head is None and float(no_head.loss(torch.randn(8, D), torch.arange(8) % K)["arch"]) == 0
    # By hand: class probabilities 0.25 and 0.3 (the two gan instances), 0.35 (diffusion), 0.1 (vae). The best
    # class is diffusion's, but gan holds 0.55 of the mass: pooled, gan wins. Sharpened to T = 0.1 (p^10), the
    # diffusion class dominates: 0.35^10 = 2.8e-5 against 0.25^10 + 0.3^10 = 6.8e-6.
    codes = Codes(
        fp=np.zeros((1, 8), np.float32),
        content=np.zeros((1, 8), np.float32),
        logits=np.log(np.array([[0.25, 0.3, 0.35, 0.1]], np.float32)),
    )
    np.testing.assert_allclose(no_head.architecture_probabilities(codes), [[0.35, 0.55, 0.1]], rtol=1e-5)
    assert no_head.architectures_of(codes).tolist() == ["gan"]
    assert no_head.architectures_of(codes, temperature=0.1).tolist() == ["diffusion"]
    # Raw inputs take the same rule: class probabilities summed over diffusion, gan (classes 0, 1) and vae.
    x = np.random.default_rng(0).normal(size=(64, D)).astype(np.float32)
    probs = no_head.predict_proba(x, temperature=2.0)
    pooled = np.stack([probs[:, 2], probs[:, 0] + probs[:, 1], probs[:, 3]], axis=1)
    expected = np.array(["diffusion", "gan", "vae"], dtype=object)[pooled.argmax(1)]
    assert np.array_equal(no_head.predict_architecture(x, temperature=2.0), expected)
    unknown = CausalDecoupler(_config())
    assert unknown.architecture_probabilities(codes) is None and unknown.architectures_of(codes) is None
    with pytest.raises(ValueError, match="without class architectures"):
        unknown.predict_architecture(x)


def test_architecture_only_rows_count_in_the_architecture_term_only() -> None:
    torch.manual_seed(0)
    net = CausalDecoupler(_config().model_copy(update={"architectures": ARCHS}))  # arch_names: diffusion, gan, vae
    x = torch.randn(8, D)
    with torch.no_grad():
        only = net.loss(x, torch.full((8,), -2))  # eight rows of another gan instance, no class of their own
        mixed = net.loss(x, torch.tensor([0, 1, 2, 3, -1, -2, -3, -2]))
    assert float(only["cls"]) == float(only["swap"]) == 0 and float(only["arch"]) > 0
    assert float(only["rec"]) > 0 and torch.isfinite(only["total"])
    assert float(mixed["cls"]) > 0 and float(mixed["swap"]) > 0 and torch.isfinite(mixed["total"])
    with pytest.raises(ValueError, match=r"in \[-3, 4\)"):
        net.loss(x, torch.full((8,), -4))
    with pytest.raises(ValueError, match=r"in \[0, 4\)"):  # no architecture head: no architecture-only rows
        CausalDecoupler(_config()).loss(x, torch.full((8,), -1))


def test_architecture_only_rows_leave_every_source_term_unchanged() -> None:
    torch.manual_seed(0)
    # Eval mode: the codes are the means, so a row's codes do not depend on the batch; w_adv > 0 builds the
    # adversary. The same seed before each call draws the same swap pairing over the rows with a class.
    net = CausalDecoupler(_config(w_adv=0.5).model_copy(update={"architectures": ARCHS})).eval()
    x = torch.randn(10, D)
    y = torch.tensor([0, -2, 1, 2, -1, 3, 0, -3, 1, 2])
    known = y >= 0
    with torch.no_grad():
        torch.manual_seed(1)
        mixed = net.loss(x, y)
        torch.manual_seed(1)
        classes_only = net.loss(x[known], y[known])
    for name in ("cls", "adv", "swap_cls", "swap_content", "swap_rec"):
        torch.testing.assert_close(mixed[name], classes_only[name], msg=name)
    # The architecture-only rows do count where they should: in the architecture and reconstruction terms.
    assert not torch.allclose(mixed["arch"], classes_only["arch"])
    assert not torch.allclose(mixed["rec"], classes_only["rec"])


def test_architecture_only_instances_teach_the_architecture_head(data: tuple[Data, Data]) -> None:
    train, test = data
    # Class 1 is held back as a class: its rows only say "gan" (index 1 of diffusion, gan, vae).
    y = np.where(train.y == 1, -2, train.y)
    config = _config().model_copy(update={"architectures": ARCHS})
    model = fit_decoupler(train.x, y, config, epochs=60, batch_size=128, lr=3e-3, seed=0, device="cpu")
    of_class_1 = test.y == 1
    assert np.mean(model.predict_architecture(test.x[of_class_1]) == "gan") > 0.9
    assert np.mean(model.predict(test.x[~of_class_1]) == test.y[~of_class_1]) > 0.9
