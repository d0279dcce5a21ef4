"""The ablation's config and its verdicts: which variant the full model is ahead of is computed from the figures,
and the sentence says plainly where a part does not help."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from causalprint.evaluation.ablation import (
    AblateConfig,
    AblationResult,
    AblationVariant,
    VariantScores,
    format_ablation,
    verdict,
)

CONDITIONS = ["clean", "jpeg75"]


def _config(**changes: object) -> AblateConfig:
    tree: dict[str, object] = {
        "name": "t",
        "train_preset": "core",
        "evaluate_preset": "core",
        "variants": [
            {"name": "full", "model_uri": "models:/m@champion"},
            {"name": "spectra", "columns": ["image.dct"]},
        ],
    }
    return AblateConfig.model_validate({**tree, **changes})


def _scores(name: str, clean: float, jpeg: float, twins: float) -> VariantScores:
    return VariantScores(
        name,
        f"models:/m-{name}/1",
        ["image.dct"],
        "columns image.dct",
        1.0,
        dict(zip(CONDITIONS, [clean, jpeg])),
        twins,
    )


def test_a_full_model_is_required_and_names_do_not_repeat() -> None:
    with pytest.raises(ValidationError, match="named 'full'"):
        _config(variants=[{"name": "a"}, {"name": "b"}])
    with pytest.raises(ValidationError, match="repeat"):
        _config(variants=[{"name": "full"}, {"name": "full"}])
    with pytest.raises(ValidationError, match="no open-set instance"):
        _config(openset_train_preset="core-openset")  # `full` names a model: nothing to train without held-out ones
    with pytest.raises(ValidationError, match="takes no changes"):
        AblationVariant(name="full", model_uri="models:/m/1", columns=["image.dct"])


def test_the_verdict_names_the_axes_where_the_full_model_is_not_ahead() -> None:
    full = _scores("full", 0.99, 0.90, 0.97)
    spectra = _scores("spectra", 0.995, 0.60, 0.97)  # better clean, far worse under JPEG, tied on twins
    result = AblationResult(_config(), CONDITIONS, {}, [full, spectra])
    axes = result.axes(spectra)
    assert axes["mean over conditions"] == pytest.approx((0.945, 0.7975))
    text = verdict(result, spectra)
    assert "ahead on jpeg75, mean over conditions" in text
    assert "not ahead on clean, twins: what `spectra` takes away does not help there" in text
    table = format_ablation(result)
    assert "| spectra | 99.5 % | 60.0 % | 79.8 % | 97.0 % |" in table


def test_a_variant_worse_everywhere_gets_no_caveat() -> None:
    full, worse = _scores("full", 0.99, 0.9, 0.97), _scores("spectra", 0.5, 0.4, 0.5)
    text = verdict(AblationResult(_config(), CONDITIONS, {}, [full, worse]), worse)
    assert "not ahead" not in text and "ahead on clean, jpeg75, mean over conditions, twins" in text
