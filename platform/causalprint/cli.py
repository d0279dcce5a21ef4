"""The ``causalprint`` command: one sub-command per job, each reading a typed config.

Every sub-command takes ``--config FILE`` (YAML) and any number of ``--set key.sub=value`` overrides;
``CAUSALPRINT__KEY__SUB=value`` variables apply between the two.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from causalprint.config import ConfigError, build_config
from causalprint.logging_setup import configure_logging
from causalprint.storage import StorageError


def _add_config_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="YAML file with the job's configuration")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override one config value, e.g. --set storage.root=s3://bucket/prefix")


def _cmd_zoo_build(args: argparse.Namespace) -> int:
    from causalprint.zoo.config import load_zoo_job
    from causalprint.zoo.job import run_zoo_build

    config = load_zoo_job(args.preset, args.config, args.overrides)
    run_zoo_build(config, args.results)
    return 0


def _cmd_inventory(args: argparse.Namespace) -> int:
    from causalprint.inventory_job import InventoryJobConfig, run_inventory

    base = {"prefix": args.prefix, **({"manifest": args.manifest} if args.manifest else {})}
    report = run_inventory(build_config(InventoryJobConfig, base, yaml_path=args.config, overrides=args.overrides))
    return 0 if report.total else 1


def _cmd_run(args: argparse.Namespace) -> int:
    from causalprint.pipeline import MainJobConfig, run_main
    from causalprint.presets import load_preset

    config = build_config(MainJobConfig, {"zoo": load_preset("zoo", args.preset)}, yaml_path=args.config,
                          overrides=args.overrides)
    _, inventory = run_main(config)
    return 0 if inventory.total else 1


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
    from causalprint.attribution.registry import TrainRegisterJobConfig, train_and_register

    print(train_and_register(_preset_config(TrainRegisterJobConfig, "train", None, args)))
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


def _cmd_probe(args: argparse.Namespace) -> int:
    from causalprint.evaluation.probe import ProbeJobConfig, format_probe, run_probe

    rows = run_probe(_preset_config(ProbeJobConfig, "probe", None, args))
    _report(args, f"separability-{args.preset}", "Separability of residual representations", format_probe(rows))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="causalprint", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="the main job: build the demo zoo and read it back into an inventory")
    run.add_argument("--preset", default="tiny", help="zoo preset (default: tiny)")
    _add_config_args(run)
    run.set_defaults(func=_cmd_run)

    zoo = commands.add_parser("zoo", help="the generator zoo").add_subparsers(dest="zoo_command", required=True)
    build = zoo.add_parser("build", help="train the generators, sample them and write images + manifest")
    build.add_argument("--preset", default="tiny", help="zoo preset: tiny or bench (default: tiny)")
    build.add_argument("--results", help="also write the zoo table into this Markdown file (docs/results.md)")
    _add_config_args(build)
    build.set_defaults(func=_cmd_zoo_build)

    ref = commands.add_parser("reference", help="the reference diffusion model").add_subparsers(
        dest="reference_command", required=True)
    ref_train = ref.add_parser("train", help="train the reference model on real images and register it in MLflow")
    ref_train.add_argument("--preset", default="tiny", help="reference preset: tiny or bench")
    _add_config_args(ref_train)
    ref_train.set_defaults(func=_cmd_reference_train)

    ext = commands.add_parser("extract", help="residuals and feature vectors of a manifest or a prefix")
    ext.add_argument("--preset", default="tiny", help="extraction preset: tiny, bench or bench-dire")
    _add_config_args(ext)
    ext.set_defaults(func=_cmd_extract)

    ssl = commands.add_parser("ssl", help="the self-supervised feature space").add_subparsers(
        dest="ssl_command", required=True)
    ssl_train = ssl.add_parser("train", help="train the ssl encoder on residuals of real images")
    ssl_train.add_argument("--preset", default="tiny", help="ssl preset: tiny or bench")
    _add_config_args(ssl_train)
    ssl_train.set_defaults(func=_cmd_ssl_train)

    bench = commands.add_parser("bench", help="benchmarks").add_subparsers(dest="bench_command", required=True)
    bench_ext = bench.add_parser("extract", help="throughput of residual modes and of the Ray pipeline")
    bench_ext.add_argument("--preset", default="tiny", help="tiny or bench")
    bench_ext.add_argument("--results", help="also write the tables into this Markdown file")
    _add_config_args(bench_ext)
    bench_ext.set_defaults(func=_cmd_bench_extract)

    train = commands.add_parser("train", help="fit the decoupling model on Ray Train and register it in MLflow")
    train.add_argument("--preset", default="tiny", help="training preset")
    _add_config_args(train)
    train.set_defaults(func=_cmd_train)

    probe = commands.add_parser("probe", help="separability of every residual mode x feature space")
    probe.add_argument("--preset", default="tiny", help="tiny or bench")
    probe.add_argument("--results", help="also write the table into this Markdown file")
    _add_config_args(probe)
    probe.set_defaults(func=_cmd_probe)

    inv = commands.add_parser("inventory", help="read a folder or bucket prefix of images and report failures")
    inv.add_argument("prefix", help="folder or prefix, inside the configured storage root")
    inv.add_argument("--manifest", help="a zoo manifest, to count images per source")
    _add_config_args(inv)
    inv.set_defaults(func=_cmd_inventory)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    configure_logging()
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except (ConfigError, StorageError) as exc:
        print(f"causalprint: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
