"""Rows to evaluate on: vector columns plus labels, read from one extraction output."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from causalprint.attribution.dataset import META_COLUMNS, load_columns
from causalprint.data.parts import vectors
from causalprint.storage import Storage


@dataclass(frozen=True)
class EvalRows:
    """``inputs[column]`` is float32 ``[N, D]``; ``source``/``arch`` name each row's origin, ``uri`` its image."""

    inputs: dict[str, np.ndarray]
    source: np.ndarray
    arch: np.ndarray
    reference_id: str
    uri: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.source)

    def subset(self, mask: np.ndarray) -> EvalRows:
        return EvalRows(
            {k: v[mask] for k, v in self.inputs.items()},
            self.source[mask],
            self.arch[mask],
            self.reference_id,
            None if self.uri is None else self.uri[mask],
        )

    def labels(self, class_names: list[str]) -> np.ndarray:
        """Class index of each row (every row's source must be a class)."""
        index = {name: i for i, name in enumerate(class_names)}
        missing = sorted(set(self.source.tolist()) - set(index))
        if missing:
            raise ValueError(f"rows of sources {missing} have no class among {class_names}")
        return np.array([index[s] for s in self.source], dtype=np.int64)


def load_eval_rows(storage: Storage, prefix: str, columns: list[str], sources: list[str], split: str) -> EvalRows:
    """The ``ok`` rows of ``sources`` in ``split`` of the extraction output ``prefix``."""
    # Selected while reading: a whole bench output (every source and split) does not fit in memory.
    wanted = pc.field("ok") & pc.is_in(pc.field("source"), pa.array(sources)) & (pc.field("split") == split)
    table = load_columns(storage, prefix, sorted({*META_COLUMNS, *columns}), rows=wanted)
    if table.num_rows == 0:
        raise ValueError(f"{prefix} has no ok rows of {sources} in split {split!r}")
    references = sorted(set(table["reference_id"].to_pylist()))
    if len(references) != 1:
        raise ValueError(f"{prefix} mixes reference models {references}")
    return EvalRows(
        {c: vectors(table, c) for c in columns},
        np.array(table["source"].to_pylist(), dtype=object),
        np.array(table["arch"].to_pylist(), dtype=object),
        references[0],
        np.array(table["uri"].to_pylist(), dtype=object),
    )
