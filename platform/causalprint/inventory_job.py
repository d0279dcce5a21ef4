"""The inventory job: read a collection through intake and report what was read and what failed."""

from __future__ import annotations

from causalprint.config import StrictModel
from causalprint.data.collection import read_collection
from causalprint.imaging.intake import IntakeConfig
from causalprint.inventory import InventoryReport, build_inventory, format_inventory
from causalprint.runtime.ray_local import RayConfig, ensure_ray
from causalprint.storage import Storage, StorageConfig
from causalprint.zoo.manifest import read_manifest


class InventoryJobConfig(StrictModel):
    storage: StorageConfig = StorageConfig()
    ray: RayConfig = RayConfig()
    intake: IntakeConfig = IntakeConfig()
    prefix: str
    manifest: str | None = None


def run_inventory(config: InventoryJobConfig) -> InventoryReport:
    """Read ``config.prefix`` (inside the storage root) and print and return the inventory."""
    ensure_ray(config.ray)
    storage = Storage(config.storage)
    prefix = storage.resolve(config.prefix)
    manifest = read_manifest(storage, storage.resolve(config.manifest)) if config.manifest else None
    report = build_inventory(read_collection(storage, prefix, config.intake), prefix, manifest)
    print(format_inventory(report))
    return report
