"""``causalprint inventory``: read a collection through intake and report what was read and what failed."""

from __future__ import annotations

import pyarrow as pa
from pydantic import Field

from causalprint.data.collection import DEFAULT_IGNORE, read_collection
from causalprint.imaging.intake import IntakeConfig
from causalprint.inventory import InventoryReport, build_inventory, format_inventory
from causalprint.runtime.job_config import JobConfig
from causalprint.runtime.ray_local import ensure_ray
from causalprint.storage import Storage, StorageError, list_source
from causalprint.text import cut
from causalprint.zoo.manifest import read_manifest


class InventoryJobConfig(JobConfig):
    intake: IntakeConfig = IntakeConfig()
    prefix: str
    manifest: str | None = None
    ignore: tuple[str, ...] = Field(
        default=DEFAULT_IGNORE,
        description="fnmatch patterns of file names (or paths below the prefix) to skip; the report counts them",
    )


def _manifest(storage: Storage, uri: str) -> pa.Table:
    """The zoo manifest at ``uri``; a missing or unreadable file is a :class:`StorageError` naming it."""
    try:
        return read_manifest(storage, storage.resolve(uri))
    except (OSError, pa.ArrowException, ValueError) as exc:
        if isinstance(exc, StorageError):
            raise
        detail = "no such file" if isinstance(exc, FileNotFoundError) else f"{type(exc).__name__}: {exc}"
        raise StorageError(f"--manifest {uri}: not a readable zoo manifest ({cut(detail, 200)})") from exc


CONFIG = InventoryJobConfig


def run(config: InventoryJobConfig) -> InventoryReport:
    """Read ``config.prefix`` (inside the storage root) and return the inventory. The prefix and the
    manifest are checked before Ray starts; a prefix that is missing or holds no files is refused."""
    storage = Storage(config.storage)
    prefix = storage.resolve(config.prefix)
    listing = list_source(storage, prefix, config.ignore)
    if not listing.entries:
        raise StorageError(
            f"no files under {prefix}" + "".join(f"; skipped: {n} {reason}" for reason, n in listing.skipped.items())
        )
    manifest = _manifest(storage, config.manifest) if config.manifest else None
    ensure_ray(config.ray)
    rows = read_collection(storage, prefix, config.intake, entries=listing.entries)
    report = build_inventory(rows, prefix, manifest).model_copy(update={"skipped": listing.skipped})
    return report


def describe(report: InventoryReport) -> str:
    return format_inventory(report)


def exit_code(report: InventoryReport) -> int:
    return 0 if report.total else 1
