"""The platform's main job on embedded defaults: build the demo zoo, then read it back into an inventory."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from causalprint.config import StrictModel
from causalprint.data.collection import read_collection
from causalprint.imaging.intake import IntakeConfig
from causalprint.inventory import InventoryReport, build_inventory, format_inventory
from causalprint.runtime.ray_local import RayConfig, ensure_ray
from causalprint.storage import Storage, StorageConfig
from causalprint.zoo.build import build_zoo
from causalprint.zoo.config import ZooConfig
from causalprint.zoo.manifest import read_manifest
from causalprint.zoo.report import format_zoo_table


class MainJobConfig(StrictModel):
    """Config of the main job. ``intake`` defaults to the zoo's image size."""

    storage: StorageConfig = StorageConfig()
    ray: RayConfig = RayConfig()
    zoo: ZooConfig
    intake: IntakeConfig | None = Field(default=None)


def run_main(config: MainJobConfig) -> tuple[dict[str, Any], InventoryReport]:
    """Build the zoo, read every stored image back through intake, and report what was read and what failed."""
    ensure_ray(config.ray)
    storage = Storage(config.storage)
    zoo_report = build_zoo(storage, config.zoo)
    print(format_zoo_table(zoo_report))
    intake = config.intake or IntakeConfig(size=config.zoo.image_size)
    images_prefix = storage.uri(config.zoo.prefix, "images")
    manifest = read_manifest(storage, zoo_report["manifest"])
    dataset = read_collection(storage, images_prefix, intake)
    inventory = build_inventory(dataset, images_prefix, manifest)
    storage.write_json(storage.uri(config.zoo.prefix, "inventory.json"), inventory.model_dump(mode="json"))
    print(format_inventory(inventory))
    return zoo_report, inventory
