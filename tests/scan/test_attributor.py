"""Which attributor a scan uses: model URIs are parsed by the registry's one parser, and a malformed one is
refused with the forms that work, before any registry is asked."""

from __future__ import annotations

import pytest

from causalprint.scan import attributor
from causalprint.scan.attributor import ModelRef, resolve_model
from causalprint.scan.errors import ScanError


@pytest.fixture()
def asked(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Records any registry lookup, which a malformed URI must never reach (scan tests resolve real aliases)."""
    calls: list[str] = []

    def record(name: str, **_: object) -> tuple[str, str]:
        calls.append(name)
        raise AssertionError("the registry was asked")

    monkeypatch.setattr(attributor, "resolve_version", record)
    return calls


def test_a_run_uri_needs_no_registry(asked: list[str]) -> None:
    run = "runs:/0a1b2c3d4e5f6789/attributor"
    assert resolve_model(run) == ModelRef(run, "run-0a1b2c3d4e5f", run)
    assert not asked


@pytest.mark.parametrize(
    "uri",
    [
        "models:/",
        "models:/attr",
        "models:/attr/",
        "models:/attr@",
        "models:/@champion",
        "models:/attr/latest",
        "models:/attr/1/2",
        "models:/attr@champion/1",
        "models:/attr@a@b",
        "/some/folder",
        "runs:/0a1b/",
        "attr@champion",
    ],
)
def test_a_malformed_uri_is_refused_with_the_forms_that_work(asked: list[str], uri: str) -> None:
    with pytest.raises(
        ScanError,
        match=r"is not an MLflow model URI; use models:/<name>@<alias>, "
        r"models:/<name>/<version> or runs:/<run id>/attributor",
    ):
        resolve_model(uri)
    assert not asked
