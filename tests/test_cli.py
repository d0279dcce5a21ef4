"""The command line: every job is a sub-command; config mistakes are refused with the key named."""

from __future__ import annotations

import pytest

from causalprint.cli import build_parser, main


def test_every_job_is_a_subcommand() -> None:
    help_text = build_parser().format_help()
    for command in ("run", "zoo", "reference", "extract", "ssl", "bench", "probe", "inventory"):
        assert command in help_text


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["zoo", "build", "--set", "zoo.image_size=nope"], "zoo.image_size"),
        (["zoo", "build", "--set", "zoo.nonsense=1"], "zoo.nonsense: unknown key"),
        (["extract", "--set", "extract.batch_size=0"], "extract.batch_size"),
        (["reference", "train", "--set", "reference.unet_steps=-1"], "reference.unet_steps"),
    ],
)
def test_bad_config_exits_2_naming_the_key(argv: list[str], message: str, capsys) -> None:
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_unknown_preset_is_refused(capsys) -> None:
    assert main(["zoo", "build", "--preset", "enormous"]) == 2
    assert "known: bench, tiny" in capsys.readouterr().err
