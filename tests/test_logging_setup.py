"""Quiet by default: causalprint's lines on the terminal, third-party records and warnings in the log file."""

from __future__ import annotations

import logging
import re
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from image_samples import header_only_png

from causalprint.logging_setup import configure_logging
from causalprint.runtime.worker_setup import BOMB_WARNING


@pytest.fixture()
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    logging.captureWarnings(False)
    for handler in root.handlers:
        if handler not in handlers:
            handler.close()
    root.handlers[:] = handlers
    root.setLevel(level)


def _emit() -> None:
    logging.getLogger("causalprint.scan.job").info("own line")
    logging.getLogger("ray.data").warning("third-party warning")
    logging.getLogger("mlflow.store").error("third-party error")
    warnings.warn("a library's warning", UserWarning, stacklevel=1)


@pytest.mark.parametrize("verbose", [False, True])
def test_third_party_noise_goes_to_the_log_file_unless_verbose(tmp_path: Path, capsys, restore_logging: None,
                                                               verbose: bool) -> None:
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
