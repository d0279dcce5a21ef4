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
from causalprint.config import ConfigError, build_config
from causalprint.enrolment.errors import EnrolmentError
from causalprint.logging_setup import configure_logging
from causalprint.presets import forget_presets_read
from causalprint.runtime.ray_local import ray_owner
from causalprint.scan.errors import ScanError
from causalprint.storage import StorageError


def _add_common_flags(parser: argparse.ArgumentParser, default: object = argparse.SUPPRESS) -> None:
    """``--debug`` and ``-v``, on the command and on every sub-command (which then leaves the command's default)."""
    parser.add_argument("--debug", action="store_true", default=default, help="print the traceback of an error")
    parser.add_argument("-v", "--verbose", action="store_true", default=default,
                        help="show third-party warnings and progress bars on the terminal too")


def _add_config_args(parser: argparse.ArgumentParser) -> None:
    _add_common_flags(parser)
    parser.add_argument("--config", help="YAML file with the job's configuration")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override one config value, e.g. --set storage.root=s3://bucket/prefix")


def _cmd_zoo_build(args: argparse.Namespace) -> int:
    from causalprint.zoo.config import load_zoo_job
    from causalprint.zoo.job import run_zoo_build

    config = load_zoo_job(args.preset, args.config, args.overrides)
    run_zoo_build(config, args.results)
    return 0


def _cmd_zoo_noise(args: argparse.Namespace) -> int:
    from causalprint.storage import Storage
    from causalprint.zoo.config import load_zoo_job
    from causalprint.zoo.noise_report import format_noise_table, noise_strengths

    config = load_zoo_job(args.preset, args.config, args.overrides)
    table = format_noise_table(noise_strengths(Storage(config.storage), config.zoo), config.zoo.image_size)
    _report(args, f"zoo-noise-{config.zoo.name}", f"StyleGAN noise strengths in zoo `{config.zoo.name}`", table)
    return 0


def _cmd_inventory(args: argparse.Namespace) -> int:
    from causalprint.inventory_job import InventoryJobConfig, run_inventory

    base = {"prefix": args.prefix, **({"manifest": args.manifest} if args.manifest else {})}
    report = run_inventory(build_config(InventoryJobConfig, base, yaml_path=args.config, overrides=args.overrides))
    return 0 if report.total else 1


def _cmd_run(args: argparse.Namespace) -> int:
    from causalprint.pipeline import MainJobConfig, format_main, main_presets, run_main

    config = build_config(MainJobConfig, main_presets(args.preset), yaml_path=args.config, overrides=args.overrides)
    reports = run_main(config)
    if args.results:
        from causalprint.results_doc import update_section

        update_section(args.results, f"main-{args.preset}", f"The main job `causalprint run` (`{args.preset}`)",
                       format_main(reports))
    # A model the gate refused is a failure too: the scan then answered with an older champion.
    return 0 if reports["scan"]["attributed"] and reports["train"].get("promoted", True) else 1


def _preset_config(model, kind: str, key: str | None, args: argparse.Namespace):
    from causalprint.presets import load_preset

    preset = load_preset(kind, args.preset) if args.preset else {}
    base = {key: preset} if key else preset
    return build_config(model, base, yaml_path=args.config, overrides=args.overrides)


def _cmd_reference_train(args: argparse.Namespace) -> int:
    from causalprint.residual.pretrain import PretrainJobConfig, run_pretrain

    print(run_pretrain(_preset_config(PretrainJobConfig, "reference", "reference", args)))
    return 0


def _cmd_extract(args: argparse.Namespace) -> int:
    from causalprint.extraction.config import ExtractJobConfig
    from causalprint.extraction.pipeline import run_extract

    config = _preset_config(ExtractJobConfig, "extract", "extract", args)
    print(run_extract(config))
    return 0


def _report(args: argparse.Namespace, key: str, title: str, table: str) -> None:
    """Print a benchmark's table and, with --results, record it in the results document."""
    print(table)
    if args.results:
        from causalprint.results_doc import update_section

        update_section(args.results, key, title, table)


def _cmd_train(args: argparse.Namespace) -> int:
    from causalprint.attribution.registry import TrainRegisterJobConfig, format_training, train_and_register

    config = _preset_config(TrainRegisterJobConfig, "train", None, args)
    summary = train_and_register(config)
    print(summary)
    _report(args, f"training-{config.name}", f"Training `{config.name}` on Ray Train", format_training(summary))
    return 0


def _cmd_ssl_train(args: argparse.Namespace) -> int:
    from causalprint.features.ssl_job import SSLJobConfig, run_ssl_training

    print(run_ssl_training(_preset_config(SSLJobConfig, "ssl", None, args)))
    return 0


def _cmd_bench_extract(args: argparse.Namespace) -> int:
    from causalprint.benchmarks.extract_throughput import (
        BenchExtractJobConfig,
        format_throughput,
        run_throughput,
    )

    result = run_throughput(_preset_config(BenchExtractJobConfig, "bench_extract", None, args))
    _report(args, f"throughput-{args.preset}", "Residual and feature engine throughput", format_throughput(result))
    return 0


def _cmd_bench_device_kit(args: argparse.Namespace) -> int:
    from causalprint.benchmarks.device_throughput import BenchDeviceJobConfig, prepare_kit

    print(prepare_kit(_preset_config(BenchDeviceJobConfig, "bench_device", None, args)))
    return 0


def _cmd_bench_device(args: argparse.Namespace) -> int:
    from causalprint.benchmarks.device_throughput import BenchDeviceJobConfig, format_device_bench, run_device_bench

    result = run_device_bench(_preset_config(BenchDeviceJobConfig, "bench_device", None, args))
    _report(args, f"device-{args.preset}", "The attribution path on CPU and GPU", format_device_bench(result))
    return 0


def _cmd_bench_serve(args: argparse.Namespace) -> int:
    from causalprint.benchmarks.serve_load import BenchServeJobConfig, format_serve_bench, run_serve_bench

    config = _preset_config(BenchServeJobConfig, "bench_serve", None, args)
    plot = os.path.join(os.path.dirname(os.path.abspath(args.results)), "images", f"serve-ramp-{args.preset}.png") \
        if args.results else None
    result = run_serve_bench(config, plot=plot)
    if plot:
        result["plot_link"] = _doc_link(args, plot)
    _report(args, f"serve-{args.preset}", "Serving: latency, batching, autoscaling, a champion change",
            format_serve_bench(result))
    return 0


def _cmd_probe(args: argparse.Namespace) -> int:
    from causalprint.evaluation.probe import ProbeJobConfig, format_probe, run_probe

    rows = run_probe(_preset_config(ProbeJobConfig, "probe", None, args))
    _report(args, f"separability-{args.preset}", "Separability of residual representations", format_probe(rows))
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from causalprint.evaluation.evaluate_job import EvaluateJobConfig, format_evaluation, run_evaluation

    result = run_evaluation(_preset_config(EvaluateJobConfig, "evaluate", None, args))
    table = format_evaluation(result)
    if result.figures:
        table += "\n\n" + "\n".join(f"![{name}]({_doc_link(args, path)})" for name, path in result.figures.items())
    # Keyed by the evaluation's name, so that another model scored under another name gets its own section.
    name = result.config.name
    title = "Attribution: ours against the baselines" + (f" (`{name}`)" if name != args.preset else "")
    _report(args, f"evaluation-{name}", title, table)
    return 0


def _cmd_study(args: argparse.Namespace) -> int:
    import json

    from causalprint.attribution.source_study import StudyJobConfig, format_study, run_study, study_summary

    config = _preset_config(StudyJobConfig, "study", "study", args)
    scores = run_study(config)
    print(json.dumps(study_summary(config.study, scores), indent=2))
    _report(args, f"study-{config.study.name}", f"Architecture-only instances: study `{config.study.name}`",
            format_study(config.study, scores))
    return 0


def _doc_link(args: argparse.Namespace, path: str) -> str:
    """``path`` relative to the results file's folder, so the Markdown image resolves on GitHub."""
    import os

    base = os.path.dirname(os.path.abspath(args.results)) if args.results else os.getcwd()
    return os.path.relpath(os.path.abspath(path), base)


def _cmd_scan(args: argparse.Namespace) -> int:
    from causalprint.presets import load_preset
    from causalprint.scan.config import ScanJobConfig
    from causalprint.scan.job import run_scan
    from causalprint.scan.report import format_summary, format_throughput

    scan = {**load_preset("scan", args.preset), "source": args.source, **({"model": args.model} if args.model else {})}
    config = build_config(ScanJobConfig, {"scan": scan}, yaml_path=args.config, overrides=args.overrides)
    summary = run_scan(config)
    print(format_summary(summary))
    _report(args, f"scan-{args.preset}", "Provenance scan throughput",
            format_throughput(summary, config.scan.batch_size, config.scan.actors.max_actors))
    if args.show:  # last, so that the rows end the output
        from causalprint.scan.rows import format_rows, report_rows
        from causalprint.storage import Storage

        print(f"\nfirst {args.show} rows (causalprint report {summary['report']} --all for every row):")
        print(format_rows(report_rows(Storage(config.storage), summary["report"], args.show)))
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from causalprint.scan.rows import ReportJobConfig, format_rows, report_rows
    from causalprint.storage import Storage

    config = build_config(ReportJobConfig, {"prefix": args.prefix}, yaml_path=args.config, overrides=args.overrides)
    print(format_rows(report_rows(Storage(config.storage), config.prefix, None if args.all else args.show),
                      args.format))
    return 0


def _count(text: str) -> int:
    """A non-negative integer argument."""
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text[:40]!r}")
    return int(text)


def _cmd_anonymize(args: argparse.Namespace) -> int:
    from causalprint.anonymization.job import format_anonymize, run_anonymize
    from causalprint.anonymization.job_config import AnonymizeJobConfig
    from causalprint.presets import load_preset

    given = {"source": args.source, "output": args.out, "model": args.model, "target": args.target}
    options = {**load_preset("anonymize", args.preset), **{k: v for k, v in given.items() if v is not None}}
    config = build_config(AnonymizeJobConfig, {"anonymize": options}, yaml_path=args.config,
                          overrides=args.overrides)
    summary = run_anonymize(config)
    print(format_anonymize(summary))
    if args.results:
        from causalprint.anonymization.job import format_anonymize_table

        import re

        slug = re.sub(r"[^a-z0-9]+", "-", config.anonymize.source.lower()).strip("-")
        _report(args, f"anonymize-{args.preset}-{config.anonymize.target}-{slug}",
                f"Anonymization of `{summary['source']}` (white-box, target {config.anonymize.target})",
                format_anonymize_table(summary))
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    from causalprint.serving.app import load_serve_job
    from causalprint.serving.launcher import serve_forever

    return serve_forever(load_serve_job(args.preset, args.config, args.overrides))


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
    with CausalprintClient(args.url, args.key or os.environ.get("CAUSALPRINT_API_KEY"),
                           version=args.model_version) as client:
        for image in args.images:
            try:
                result = client.attribute(image)
            except httpx.HTTPError as exc:
                raise ConfigError(f"cannot reach the service at {args.url}: {exc}") from None
            except (ServiceError, OSError) as exc:
                failed += 1
                print(json.dumps({"image": image, "error": str(exc)}) if args.json else
                      f"{_escaped(image)}\terror: {_escaped(str(exc))}")
                continue
            if args.json:
                print(json.dumps({"image": image, **result}))
            else:
                flag = " (unknown)" if result["unknown"] else ""
                print(f"{_escaped(image)}\t{result['source']}{flag}\tconfidence {result['confidence']:.3f}\t"
                      f"family {result['family'] or '-'}\t{result['model']['uri']}")
    return 1 if failed else 0


def _escaped(text: str) -> str:
    from causalprint.cli_errors import one_line

    return one_line(text)


def _cmd_enrol(args: argparse.Namespace) -> int:
    from causalprint.enrolment.config import EnrolJobConfig
    from causalprint.enrolment.job import format_enrolment, run_enrolment
    from causalprint.presets import load_preset

    given = {"images": args.images, "source": args.source, "family": args.family, "model": args.model,
             "alias": args.alias}
    enrol = {**load_preset("enrol", args.preset), **{k: v for k, v in given.items() if v is not None}}
    config = build_config(EnrolJobConfig, {"enrol": enrol}, yaml_path=args.config, overrides=args.overrides)
    print(format_enrolment(run_enrolment(config)))
    return 0


def _job(
    subparsers: argparse._SubParsersAction,
    name: str,
    help_text: str,
    func,
    presets: str | None = "tiny or bench",
    results: bool = False,
    default_preset: str = "tiny",
) -> argparse.ArgumentParser:
    """One job sub-command: an optional ``--preset``, optional ``--results``, and the config arguments."""
    parser = subparsers.add_parser(name, help=help_text)
    if presets:
        parser.add_argument("--preset", default=default_preset, help=f"preset: {presets} (default: {default_preset})")
    if results:
        parser.add_argument("--results", help="also write the tables into this Markdown file (docs/results.md)")
    _add_config_args(parser)
    parser.set_defaults(func=func)
    return parser


def _group(subparsers: argparse._SubParsersAction, name: str, help_text: str) -> argparse._SubParsersAction:
    return subparsers.add_parser(name, help=help_text).add_subparsers(dest=f"{name}_command", required=True)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="causalprint", description=__doc__.splitlines()[0])
    _add_common_flags(parser, default=False)
    commands = parser.add_subparsers(dest="command", required=True)
    _job(commands, "run", "the main job: zoo, reference, features, attributor (registered), scan of the zoo",
         _cmd_run, presets="demo (six sources at 32 px, minutes) or tiny (seconds, for the tests)",
         results=True, default_preset="demo")
    zoo = _group(commands, "zoo", "the generator zoo")
    _job(zoo, "build", "train the generators, sample them and write images + manifest", _cmd_zoo_build, results=True)
    _job(zoo, "noise", "per-layer noise strengths of the zoo's StyleGANs, read from their stored weights",
         _cmd_zoo_noise, results=True)
    _job(_group(commands, "reference", "the reference diffusion model"), "train",
         "train the reference model on real images and record it in MLflow", _cmd_reference_train)
    _job(commands, "extract", "residuals and feature vectors of a manifest or a prefix", _cmd_extract,
         presets="tiny, bench or bench-dire")
    _job(_group(commands, "ssl", "the self-supervised feature space"), "train",
         "train the ssl encoder on residuals of real images", _cmd_ssl_train)
    bench = _group(commands, "bench", "benchmarks")
    _job(bench, "extract", "throughput of residual modes and of the Ray pipeline", _cmd_bench_extract, results=True)
    _job(bench, "device-kit", "copy an attributor, its reference model and held-out images for `bench device`",
         _cmd_bench_device_kit)
    _job(bench, "device", "the attribution path on each device (CPU, CUDA) in one process; needs a device kit",
         _cmd_bench_device, results=True)
    _job(bench, "serve", "the Serve app under load on 127.0.0.1: latency, batched vs unbatched, replicas over a "
         "ramp, a champion change", _cmd_bench_serve, results=True, presets="demo, tiny or bench",
         default_preset="demo")
    _job(commands, "train", "fit the decoupling model on Ray Train and register it in MLflow", _cmd_train,
         presets="tiny, bench or bench-openset", results=True)
    _job(commands, "evaluate", "ours against the baselines: clean, perturbed, content shift, open set",
         _cmd_evaluate, presets="bench", results=True)
    _job(commands, "study",
         "train variants that differ in their architecture-only instances or columns; score shift copies",
         _cmd_study, presets="bench-layer", results=True, default_preset="bench-layer")
    _job(commands, "probe", "separability of every residual mode x feature space", _cmd_probe, results=True)
    scan = _job(commands, "scan", "attribute every image of a folder or bucket prefix; a resumable Parquet report",
                _cmd_scan, results=True)
    scan.add_argument("source", help="folder or prefix of images, inside the configured storage root")
    scan.add_argument("--model", help="attributor URI (default: models:/causalprint-attributor@champion)")
    scan.add_argument("--show", type=_count, default=0, metavar="N",
                      help="also print the report's first N rows: file, decision, confidence, unknown, error")
    report = _job(commands, "report", "print or export the rows of a scan report (one image's answer)",
                  _cmd_report, presets=None)
    report.add_argument("prefix", help="the report folder a scan printed (report: ...), inside storage")
    report.add_argument("--show", type=_count, default=20, metavar="N", help="the first N rows, by file (default 20)")
    report.add_argument("--all", action="store_true", help="every row")
    report.add_argument("--format", choices=("table", "csv", "jsonl"), default="table",
                        help="table (escaped, for the terminal), csv or jsonl (every column, for a file)")
    enrol = _job(commands, "enrol", "add a new source to a registered attributor from a few of its images: a new "
                 "version, no retraining", _cmd_enrol)
    enrol.add_argument("images", help="folder or prefix of the new source's images, inside the configured storage root")
    enrol.add_argument("--source", required=True, help="the new source's name, e.g. my-gan-v2")
    enrol.add_argument("--family", required=True, help="its family: gan, diffusion, vae, ...")
    enrol.add_argument("--model", help="attributor URI (default: models:/causalprint-attributor@champion)")
    enrol.add_argument("--alias", help="alias of the new version (default: candidate; only the gate moves champion)")
    anonymize = _job(commands, "anonymize", "remove the source's fingerprint from every image of a folder or "
                     "prefix: PNGs and a per-image report, resumable", _cmd_anonymize, presets="demo, tiny or bench",
                     default_preset="demo", results=True)
    anonymize.add_argument("source", help="folder or prefix of images, inside the configured storage root")
    anonymize.add_argument("--out", required=True, help="prefix for the anonymized PNGs and the report")
    anonymize.add_argument("--model", help="attributor URI (default: the preset's champion)")
    anonymize.add_argument("--target", choices=("real", "away"),
                           help="the counterfactual: the real class (default) or away from the named source")
    _job(commands, "serve", "start the Serve application (attribution, verification, enrolment, web page) and "
         "print its URL", _cmd_serve, presets="demo (the main job's model), tiny or bench", default_preset="demo")
    keygen = commands.add_parser("keygen", help="make an API key and the hashed record the service stores")
    keygen.add_argument("--role", choices=("user", "admin"), default="user")
    keygen.set_defaults(func=_cmd_keygen)
    _add_common_flags(keygen)
    attribute = commands.add_parser("attribute", help="ask a running service which model made each image")
    attribute.add_argument("images", nargs="+", help="local image files, or storage:<uri> for objects in the "
                                                     "service's storage")
    attribute.add_argument("--url", default="http://127.0.0.1:8000", help="the service (default: %(default)s)")
    attribute.add_argument("--key", help="API key (default: $CAUSALPRINT_API_KEY)")
    attribute.add_argument("--model-version", help="ask this registered version instead of the champion")
    attribute.add_argument("--json", action="store_true", help="one JSON answer per line")
    attribute.set_defaults(func=_cmd_attribute)
    _add_common_flags(attribute)
    inv = _job(commands, "inventory", "read a folder or bucket prefix of images and report failures",
               _cmd_inventory, presets=None)
    inv.add_argument("prefix", help="folder or prefix, inside the configured storage root")
    inv.add_argument("--manifest", help="a zoo manifest, to count images per source")
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
