"""Where each StyleGAN of a zoo keeps its per-pixel noise: the strengths read from its stored weights.

A StyleGAN scales the noise it adds at each styled layer by a strength that it learns (or keeps fixed, with
``noise_learned: false``). How much it learns depends on its training images, so this table is how the zoo's
content-shift copies are compared with the instances the attributor trains on (docs/attribution.md).
"""

from __future__ import annotations

import re
from typing import Any

from safetensors.torch import load as load_safetensors

from causalprint.storage import Storage, StorageError
from causalprint.zoo.build import generator_prefix
from causalprint.zoo.config import ZooConfig
from causalprint.zoo.generators.stylegan import layer_resolutions

_STRENGTH_KEY = re.compile(r"\.layers\.(\d+)\.noise_strength$")
_OPTIONS = ("noise_init", "noise_learned", "noise_random_max", "noise_random_p")


def noise_strengths(storage: Storage, zoo: ZooConfig) -> list[dict[str, Any]]:
    """One row per StyleGAN of ``zoo``: its content group, noise options and per-layer strengths (None for one
    whose strengths are drawn per image).

    Reads only the weights the zoo build stored; a StyleGAN not built yet is an error that names it.
    """
    rows = []
    for spec in zoo.generators:
        if spec.arch != "stylegan":
            continue
        prefix = generator_prefix(storage, zoo, spec)
        if not storage.exists(f"{prefix}/train.json"):
            raise StorageError(f"{spec.name}: no trained weights at {prefix}; run `causalprint zoo build` first")
        tensors = load_safetensors(storage.read_bytes(f"{prefix}/model.safetensors"))
        by_layer = {int(m.group(1)): float(v) for k, v in tensors.items() if (m := _STRENGTH_KEY.search(k))}
        options = {k: spec.options[k] for k in _OPTIONS if k in spec.options}
        drawn = "noise_random_max" in options  # the stored strengths are fixed 1s; the drawn ones scale the maps
        rows.append(
            {
                "source": spec.name,
                "content_group": spec.content_group,
                "options": options,
                "strengths": None if drawn else [by_layer[i] for i in sorted(by_layer)],
            }
        )
    return rows


def format_noise_table(rows: list[dict[str, Any]], image_size: int, mark: float = 0.03) -> str:
    """Markdown table of :func:`noise_strengths`; strengths of magnitude ``mark`` or more are in bold."""
    resolutions = layer_resolutions(image_size)
    header = " | ".join(f"L{i} {r}x{r}" for i, r in enumerate(resolutions))
    lines = [f"| source | content group | noise options | {header} |", "|---|---|---|" + "---:|" * len(resolutions)]
    for row in rows:
        opts = ", ".join(f"{k}: {v}" for k, v in row["options"].items()) or "learned from 0"
        # Stored as float32: a fixed 0.03 reads back as 0.0299999993.
        if row["strengths"] is None:  # drawn per image: no one strength to show
            cells = " | ".join(["drawn"] * len(resolutions))
        else:
            cells = " | ".join(f"**{s:+.3f}**" if round(abs(s), 6) >= mark else f"{s:+.3f}" for s in row["strengths"])
        lines.append(f"| {row['source']} | {row['content_group']} | {opts} | {cells} |")
    return "\n".join(lines)
