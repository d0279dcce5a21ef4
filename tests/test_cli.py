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
        (["extract", "--set", "extract.batch_size=true"], "extract.batch_size: Input should be a valid integer"),
        (["extract", "--set", "extract.batch_size=100000"], "extract.batch_size: Input should be less than or"),
        (["reference", "train", "--set", "reference.unet_steps=-1"], "reference.unet_steps"),
    ],
)
def test_bad_config_exits_2_naming_the_key(argv: list[str], message: str, capsys) -> None:
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_unknown_preset_is_refused(capsys) -> None:
    assert main(["zoo", "build", "--preset", "enormous"]) == 2
    assert "known: bench, core, demo, tiles64, tiny" in capsys.readouterr().err


# -- hostile input: every user error is one line on stderr, exit 2, no traceback ----------------------------------

# 9 lists of 9 aliases, nested 9 deep: ~450 bytes that expand to 9**9 strings (the 456-byte bomb).
BOMB = "a: &a [x,x,x,x,x,x,x,x,x]\n" + "".join(
    f"{n}: &{n} [{','.join([f'*{p}'] * 9)}]\n" for p, n in zip("abcdefgh", "bcdefghi")
)


def _one_line_refusal(argv: list[str], capsys, code: int = 2) -> str:
    assert main(argv) == code
    captured = capsys.readouterr()
    err = captured.err
    assert err.count("\n") == 1 and err.startswith("causalprint: "), err
    assert "Traceback" not in err and len(err) < 1100
    return err


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\xff\xfe binary", "is not UTF-8 text"),
        (BOMB.encode(), "YAML aliases (*a) are not accepted"),
        (b"zoo: [unclosed", "is not valid YAML"),
        (b"- a list\n- not a mapping\n", "must hold a mapping"),
    ],
)
def test_a_config_file_that_is_not_a_job_yaml_is_one_line(tmp_path, capsys, content: bytes, message: str) -> None:
    path = tmp_path / "config.yaml"
    path.write_bytes(content)
    assert len(BOMB) < 500
    assert message in _one_line_refusal(["zoo", "build", "--config", str(path)], capsys)


@pytest.mark.parametrize(
    ("target", "message"),
    [(".", "is a folder"), ("/dev/zero", "is not a regular file"), ("missing.yaml", "config file not found")],
)
def test_a_config_path_that_is_not_a_file_is_one_line(tmp_path, capsys, target: str, message: str) -> None:
    path = target if target.startswith("/") else str(tmp_path / target)
    assert message in _one_line_refusal(["zoo", "build", "--config", path], capsys)


def test_an_alias_in_a_set_value_is_taken_as_text_not_expanded(capsys) -> None:
    err = _one_line_refusal(["zoo", "build", "--set", "zoo.name=*a"], capsys)
    assert "zoo" in err  # refused by validation (zoo needs more than a name), not a YAML crash


def test_echoed_input_is_cut_to_a_few_hundred_characters(capsys) -> None:
    err = _one_line_refusal(["zoo", "build", "--set", "zoo.image_size=" + "9" * 5000], capsys)
    assert "zoo.image_size" in err and "more characters" in err


@pytest.mark.parametrize("name", ["../../x", "/etc/passwd", "tiny.yaml", "x/../tiny"])
def test_a_preset_is_a_name_not_a_path(capsys, name: str) -> None:
    err = _one_line_refusal(["zoo", "build", "--preset", name], capsys)
    assert "is not a preset name" in err and "--config" in err


@pytest.mark.parametrize(
    ("value", "message"),
    [("true", "valid integer"), ("100000", "less than or equal to 4096"), ("2.5", "valid integer")],
)
def test_scan_batch_size_is_a_bounded_integer(tmp_path, capsys, value: str, message: str) -> None:
    err = _one_line_refusal(
        ["scan", "inbox", "--set", f"storage.root={tmp_path}", "--set", f"scan.batch_size={value}"], capsys
    )
    assert "scan.batch_size" in err and message in err


def test_results_at_a_folder_is_refused_before_the_scan_runs(tmp_path, capsys, monkeypatch) -> None:
    import causalprint.jobs.scan

    monkeypatch.setattr(causalprint.jobs.scan, "run_scan", lambda *a, **k: pytest.fail("the scan ran"))
    (tmp_path / "inbox").mkdir()
    root = ["--set", f"storage.root={tmp_path}"]
    assert "--results" in _one_line_refusal(["scan", "inbox", *root, "--results", str(tmp_path)], capsys)
    err = _one_line_refusal(["scan", "inbox", *root, "--results", str(tmp_path / "no" / "r.md")], capsys)
    assert "does not exist" in err


@pytest.mark.parametrize(
    "source",
    [
        "photoz",
        "C:\\Windows\\win.ini",
        "..%2F..%2Fetc%2Fpasswd",
        "%2e%2e/%2e%2e/etc/passwd",
        "~/.aws/credentials",
        "\\\\server\\share\\x",
    ],
)
def test_a_missing_source_is_an_error_not_zero_images(tmp_path, capsys, monkeypatch, source: str) -> None:
    import causalprint.jobs.inventory

    monkeypatch.setattr(causalprint.jobs.inventory, "ensure_ray", lambda *a: pytest.fail("Ray started first"))
    root = ["--set", f"storage.root={tmp_path}"]
    assert "no such folder or file" in _one_line_refusal(["scan", source, *root], capsys)
    assert "no such folder or file" in _one_line_refusal(["inventory", source, *root], capsys)
    assert not (tmp_path / "scans").exists()  # nothing written, no _scan.json


def test_an_empty_source_is_an_error_naming_what_was_skipped(tmp_path, capsys) -> None:
    (tmp_path / "inbox").mkdir()
    (tmp_path / "inbox" / "notes.txt").write_text("x")
    err = _one_line_refusal(
        ["scan", "inbox", "--set", f"storage.root={tmp_path}", "--set", "scan.ignore=['*.txt']"], capsys
    )
    assert "nothing to scan" in err and "1 matches ignore pattern '*.txt'" in err
    err = _one_line_refusal(
        ["inventory", "inbox", "--set", f"storage.root={tmp_path}", "--set", "ignore=['*.txt']"], capsys
    )
    assert "no files under" in err


def test_a_storage_root_that_is_a_file_is_refused(tmp_path, capsys) -> None:
    (tmp_path / "file").write_text("x")
    for root in (str(tmp_path / "file"), "file:///etc/passwd"):
        assert "is a file, not a folder" in _one_line_refusal(
            ["inventory", "x", "--set", f"storage.root={root}"], capsys
        )


def test_an_inventory_manifest_that_is_not_one_is_one_line(tmp_path, capsys) -> None:
    (tmp_path / "inbox").mkdir()
    (tmp_path / "inbox" / "a.png").write_bytes(b"x")
    (tmp_path / "m.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    root = ["--set", f"storage.root={tmp_path}"]
    for manifest in ("nope.parquet", "m.png"):
        assert "not a readable zoo manifest" in _one_line_refusal(
            ["inventory", "inbox", *root, "--manifest", manifest], capsys
        )


def test_a_defect_is_one_line_and_debug_shows_the_traceback(capsys, monkeypatch) -> None:
    import causalprint.jobs.zoo_build

    def broken(*args, **kwargs):
        raise RuntimeError("a defect\nover two lines")

    monkeypatch.setattr(causalprint.jobs.zoo_build, "run", broken)
    err = _one_line_refusal(["zoo", "build"], capsys, code=1)
    assert "unexpected RuntimeError: a defect; over two lines" in err and "--debug" in err
    with pytest.raises(RuntimeError, match="a defect"):
        main(["zoo", "build", "--debug"])
    with pytest.raises(RuntimeError, match="a defect"):
        main(["--debug", "zoo", "build"])


def test_ctrl_c_exits_130_with_the_resume_message(capsys, monkeypatch) -> None:
    import causalprint.jobs.zoo_build
    from causalprint.scan.errors import ScanInterrupted

    def interrupted(*args, **kwargs):
        raise ScanInterrupted(7)

    monkeypatch.setattr(causalprint.jobs.zoo_build, "run", interrupted)
    err = _one_line_refusal(["zoo", "build"], capsys, code=130)
    assert "interrupted: 7 images in the report; rerun the same command to go on" in err


@pytest.mark.parametrize("argv", [["-v", "zoo", "build"], ["zoo", "build", "--verbose"]])
def test_verbose_is_taken_before_or_after_the_command(argv: list[str], capsys) -> None:
    assert build_parser().parse_args(argv).verbose is True
    assert build_parser().parse_args(["zoo", "build"]).verbose is False


def test_an_unreachable_s3_root_is_one_line(capsys) -> None:
    err = _one_line_refusal(
        ["inventory", "x", "--set", "storage.root=s3://bucket/p", "--set", "storage.endpoint_url=http://127.0.0.1:9"],
        capsys,
    )
    assert "OSError" in err and "127.0.0.1" in err
