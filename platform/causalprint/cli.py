"""The ``causalprint`` command: one sub-command per job, each reading a typed config.

Every sub-command takes ``--config FILE`` (YAML) and any number of ``--set key.sub=value`` overrides;
``CAUSALPRINT__KEY__SUB=value`` variables apply between the two.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from causalprint.cli_errors import INTERRUPTED, check_output_file, failure, interrupted
from causalprint.config import ConfigError
from causalprint.enrolment.errors import EnrolmentError
from causalprint.jobs.catalog import GROUPS, JOBS
from causalprint.jobs.spec import JobSpec, find, run_job
from causalprint.logging_setup import configure_logging
from causalprint.presets import forget_presets_read
from causalprint.runtime.ray_local import ray_owner
from causalprint.scan.errors import ScanError
from causalprint.storage import StorageError


def _add_common_flags(parser: argparse.ArgumentParser, default: object = argparse.SUPPRESS) -> None:
    """``--debug`` and ``-v``, on the command and on every sub-command (which then leaves the command's default)."""
    parser.add_argument("--debug", action="store_true", default=default, help="print the traceback of an error")
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        default=default,
        help="show third-party warnings and progress bars on the terminal too",
    )


def _add_config_args(parser: argparse.ArgumentParser) -> None:
    _add_common_flags(parser)
    parser.add_argument("--config", help="YAML file with the job's configuration")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one config value, e.g. --set storage.root=s3://bucket/prefix",
    )


def _preset_help(spec: JobSpec) -> str:
    return f"preset: {', '.join(spec.preset_names())} (default: {spec.default_preset})"


def _add_job(
    parsers: dict[str, argparse._SubParsersAction], commands: argparse._SubParsersAction, spec: JobSpec
) -> None:
    """The sub-command of one job: its arguments, ``--preset``, ``--results`` and the config arguments."""
    *group, word = spec.command.split()
    if group:
        if group[0] not in parsers:
            parsers[group[0]] = commands.add_parser(group[0], help=GROUPS[group[0]]).add_subparsers(
                dest=f"{group[0]}_command", required=True
            )
        where = parsers[group[0]]
    else:
        where = commands
    parser = where.add_parser(word, help=spec.help)
    for argument in spec.arguments:
        parser.add_argument(*argument.flags, help=argument.help, **argument.options)
    if spec.preset_kind:
        parser.add_argument("--preset", default=spec.default_preset, help=_preset_help(spec))
    if spec.results:
        parser.add_argument("--results", help="also write the tables into this Markdown file (docs/results.md)")
    _add_config_args(parser)
    parser.set_defaults(func=_cmd_job, spec=spec)


def _given(spec: JobSpec, args: argparse.Namespace) -> dict[str, object]:
    return {a.dest: getattr(args, a.dest) for a in spec.arguments if a.key}


def _cmd_job(args: argparse.Namespace) -> int:
    spec: JobSpec = args.spec
    preset = getattr(args, "preset", None)
    config = spec.build(preset, args.config, _given(spec, args), args.overrides)
    options = {a.dest: getattr(args, a.dest) for a in spec.arguments if not a.key}
    return run_job(spec, config, preset=preset, results=getattr(args, "results", None), options=options)


def _cmd_config_show(args: argparse.Namespace) -> int:
    import json

    spec = find(args.job, JOBS)
    preset = args.preset or (spec.default_preset if spec.preset_kind else None)
    rows = spec.origins(preset, args.config, {}, args.overrides)
    width = max(len(key) for key, _, _ in rows)
    for key, value, origin in rows:
        print(f"{key:<{width}}  {json.dumps(value)}  ({origin})")
    return 0


def _cmd_keygen(args: argparse.Namespace) -> int:
    import json

    from causalprint.serving.keys import new_key

    key, record = new_key(args.role)
    print(f"key (give it to its user; it is not stored anywhere): {key}")
    print(f"record (put it under serve.auth.keys): {json.dumps(record.model_dump())}")
    return 0


def _cmd_attribute(args: argparse.Namespace) -> int:
    import json

    import httpx

    from causalprint.serving.client import CausalprintClient, ServiceError

    failed = 0
    with CausalprintClient(
        args.url, args.key or os.environ.get("CAUSALPRINT_API_KEY"), version=args.model_version
    ) as client:
        for image in args.images:
            try:
                result = client.attribute(image)
            except httpx.HTTPError as exc:
                raise ConfigError(f"cannot reach the service at {args.url}: {exc}") from None
            except (ServiceError, OSError) as exc:
                failed += 1
                print(
                    json.dumps({"image": image, "error": str(exc)})
                    if args.json
                    else f"{_escaped(image)}\terror: {_escaped(str(exc))}"
                )
                continue
            if args.json:
                print(json.dumps({"image": image, **result}))
            else:
                flag = " (unknown)" if result["unknown"] else ""
                print(
                    f"{_escaped(image)}\t{result['source']}{flag}\tconfidence {result['confidence']:.3f}\t"
                    f"family {result['family'] or '-'}\t{result['model']['uri']}"
                )
    return 1 if failed else 0


def _escaped(text: str) -> str:
    from causalprint.cli_errors import one_line

    return one_line(text)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="causalprint", description=__doc__.splitlines()[0])
    _add_common_flags(parser, default=False)
    commands = parser.add_subparsers(dest="command", required=True)
    groups: dict[str, argparse._SubParsersAction] = {}
    for spec in JOBS:
        _add_job(groups, commands, spec)
    config = commands.add_parser("config", help="job configs").add_subparsers(dest="config_command", required=True)
    show = config.add_parser("show", help="print a job's merged config and where each value came from")
    show.add_argument("job", nargs="+", help="the job's command words, e.g. scan or zoo build")
    show.add_argument("--preset", help="preset (default: the job's)")
    _add_config_args(show)
    show.set_defaults(func=_cmd_config_show)
    keygen = commands.add_parser("keygen", help="make an API key and the hashed record the service stores")
    keygen.add_argument("--role", choices=("user", "admin"), default="user")
    keygen.set_defaults(func=_cmd_keygen)
    _add_common_flags(keygen)
    attribute = commands.add_parser("attribute", help="ask a running service which model made each image")
    attribute.add_argument(
        "images", nargs="+", help="local image files, or storage:<uri> for objects in the service's storage"
    )
    attribute.add_argument("--url", default="http://127.0.0.1:8000", help="the service (default: %(default)s)")
    attribute.add_argument("--key", help="API key (default: $CAUSALPRINT_API_KEY)")
    attribute.add_argument("--model-version", help="ask this registered version instead of the champion")
    attribute.add_argument("--json", action="store_true", help="one JSON answer per line")
    attribute.set_defaults(func=_cmd_attribute)
    _add_common_flags(attribute)
    return parser


def _check_paths(args: argparse.Namespace) -> None:
    """Refuse an output file that cannot be written before the job runs (a scan of hours, then a traceback)."""
    if getattr(args, "results", None):
        check_output_file(args.results, "--results")


def main(argv: Sequence[str] | None = None) -> int:
    """Run one sub-command. Every error is one line on stderr (``--debug`` adds the traceback): 2 for a refusal
    the user can fix, 1 for a defect, 130 for Ctrl-C (a Ray that this call started is stopped)."""
    args = build_parser().parse_args(argv)
    configure_logging(verbose=args.verbose)
    forget_presets_read()  # a results section records the presets this command reads (results_doc)
    try:
        with ray_owner():
            _check_paths(args)
            return int(args.func(args))
    # Refusals that say what to change: no traceback.
    except (ConfigError, StorageError, ScanError, EnrolmentError) as exc:
        if args.debug:
            raise
        message, code = failure(exc, refusal=True)
    except KeyboardInterrupt as exc:
        message, code = interrupted(exc), INTERRUPTED
    except Exception as exc:  # the last line of defence: one line, and --debug for the traceback
        if args.debug:
            raise
        message, code = failure(exc)
    print(message, file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
