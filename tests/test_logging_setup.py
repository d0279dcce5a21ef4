"""Quiet by default: causalprint's lines on the terminal, third-party records and warnings in the log file."""

from __future__ import annotations

import logging
import re
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from image_samples import header_only_png

from causalprint.logging_setup import adopt_logger, configure_logging
from causalprint.runtime.worker_setup import BOMB_WARNING


@pytest.fixture()
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    logging.captureWarnings(False)  # an earlier main() left it on, under another test's warning recorder
    yield
    logging.captureWarnings(False)
    for handler in root.handlers:
        if handler not in handlers:
            handler.close()
    root.handlers[:] = handlers
    root.setLevel(level)


def _emit() -> None:
    logging.getLogger("causalprint.scan.job").info("own line")
    logging.getLogger("a_library.module").warning("third-party warning")
    logging.getLogger("mlflow.store").error("third-party error")
    warnings.warn("a library's warning", UserWarning, stacklevel=1)


@pytest.mark.parametrize("verbose", [False, True])
def test_third_party_noise_goes_to_the_log_file_unless_verbose(
    tmp_path: Path, capsys, restore_logging: None, verbose: bool
) -> None:
    log_file = tmp_path / "logs" / "causalprint.log"
    assert configure_logging(verbose=verbose, log_file=str(log_file)) == str(log_file)
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        _emit()
    for handler in logging.getLogger().handlers:
        handler.flush()
    err, logged = capsys.readouterr().err, log_file.read_text()
    for line in ("own line", "third-party warning", "third-party error", "a library's warning"):
        assert line in logged
    assert "own line" in err and "third-party error" in err
    assert ("third-party warning" in err) == verbose and ("a library's warning" in err) == verbose


def test_the_workers_filter_matches_pillows_bomb_warning() -> None:
    from PIL import Image

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        Image.open(__import__("io").BytesIO(header_only_png(10_000, 9_000)))
    [warning] = [w for w in caught if issubclass(w.category, Image.DecompressionBombWarning)]
    assert re.match(BOMB_WARNING, str(warning.message))


def test_a_logger_with_its_own_terminal_handler_is_routed_too(tmp_path: Path, capsys, restore_logging: None) -> None:
    own = logging.getLogger("installs_its_own")
    own.addHandler(logging.StreamHandler())
    own.propagate = False
    log_file = tmp_path / "causalprint.log"
    configure_logging(log_file=str(log_file))
    adopt_logger("installs_its_own")
    own.warning("routed")
    for handler in logging.getLogger().handlers:
        handler.flush()
    assert "routed" not in capsys.readouterr().err and "routed" in log_file.read_text()


def test_ray_data_is_configured_without_a_terminal_handler(
    tmp_path: Path, restore_logging: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ray.data._internal.logging import _get_logging_config

    from causalprint.logging_setup import RAY_DATA_CONFIG_ENV

    monkeypatch.delenv(RAY_DATA_CONFIG_ENV, raising=False)
    configure_logging(log_file=str(tmp_path / "causalprint.log"))
    assert _get_logging_config()["loggers"]["ray.data"] == {"level": "INFO", "handlers": [], "propagate": True}
