"""``causalprint zoo tile``: a zoo of native-resolution tiles of the model's size, cut from a zoo of larger
images (:mod:`causalprint.zoo.tiling`), to train an attributor that reads large images as tiles."""

from __future__ import annotations

from typing import TypedDict

from pydantic import Field

from causalprint.config import StrictModel
from causalprint.runtime.job_config import JobConfig
from causalprint.storage import Storage
from causalprint.zoo.tiling import tile_zoo


class TileZooOptions(StrictModel):
    manifest: str = Field(description="the parent zoo's manifest in storage")
    output: str = Field(description="folder of the tile zoo (images/ and manifest.parquet)")
    size: int = Field(ge=8, description="tile side: the reference model's image size")
    tiles: int = Field(default=4, ge=1, le=64, description="tiles per image at most, on attribution's grid")


class ZooTileConfig(JobConfig):
    tile: TileZooOptions


CONFIG = ZooTileConfig


class TileResult(TypedDict):
    manifest: str
    parents: int
    tiles: int
    by_source: dict[str, int]
    skipped: bool


def run(config: ZooTileConfig) -> TileResult:
    storage = Storage(config.storage)
    cfg = config.tile
    out = storage.uri(cfg.output, "manifest.parquet")
    skipped = storage.exists(out)
    table = storage.read_parquet(out) if skipped else tile_zoo(storage, cfg.manifest, cfg.output, cfg.size, cfg.tiles)
    sources = table["source"].to_pylist()
    return {
        "manifest": out,
        "parents": len(set(table["parent"].to_pylist())),
        "tiles": table.num_rows,
        "by_source": {s: sources.count(s) for s in dict.fromkeys(sources)},
        "skipped": skipped,
    }


def describe(result: TileResult) -> str:
    done = "already cut" if result["skipped"] else "cut"
    return f"{result['tiles']} tiles of {result['parents']} images {done}: {result['manifest']} {result['by_source']}"
