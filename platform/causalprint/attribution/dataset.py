"""Attribution data from an extraction output: which vector columns, which rows, which labels, which splits.

Rows are the ``ok`` rows of one extraction output (``causalprint.data.parts``). The input of the model is
the concatenation of the chosen ``<mode>.<space>`` columns, in the configured order. Labels are the sorted
source names that take part in training; *held-out* sources never train and come back as the open-set
"unknown" test rows; *architecture-only* sources train the architecture head alone. Which other sources are
dropped is said one of two ways: a list of the classes (``class_sources``: every source the config does not
name is dropped, so a source added to the zoo trains nothing until a preset names it), or a list of the dropped
ones (``excluded_sources``). Splits:

- ``train``: the manifest's train split minus the validation rows;
- ``val``: carved from the train split per class, deterministically by a hash of the row's URI relative to the
  storage root (so the same image is always in the same part, whatever the row order, the worker or the root the
  features were extracted under: a URI outside the root is hashed as written);
- ``test``: the manifest's held-out split, known sources only; ``unknown``: the held-out split of held-out sources.

Every row must come from one reference model (``reference_id``): vectors of different reference models do not
live in one space.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field, model_validator

from causalprint.attribution.model import architecture_names
from causalprint.config import StrictModel, check_one_role
from causalprint.data.parts import part_columns, read_parts, vectors
from causalprint.storage import Storage, StorageError

__all__ = [
    "AttributionData",
    "DataConfig",
    "check_columns",
    "load_attribution_data",
    "load_columns",
    "split_attribution_data",
]

META_COLUMNS = ("uri", "source", "arch", "family", "split", "ok", "reference_id")


class DataConfig(StrictModel):
    """Which extraction output, which vector columns and which sources."""

    features: str | list[str] = Field(
        min_length=1,
        description="extraction output prefix(es) in storage, e.g. features/tiny; several (e.g. the "
        "clean output and an augmented copy of its train split) are read as one table",
    )
    columns: list[str] = Field(min_length=1, description="<mode>.<space> vector columns, concatenated in order")
    held_out_sources: list[str] = Field(
        default_factory=list, description="never trained on: their test-split rows are the open-set unknowns"
    )
    class_sources: list[str] | None = Field(
        default=None,
        description="the classes; when given, every source this config does not name (here, in "
        "held_out_sources or in architecture_only_sources) is dropped",
    )
    excluded_sources: list[str] = Field(
        default_factory=list, description="dropped entirely (when class_sources is not given)"
    )
    architecture_only_sources: list[str] = Field(
        default_factory=list,
        description="further instances of the classes' architectures: their train rows "
        "train the architecture head only, they are no class of their own (see AttributionData.y_train)",
    )
    train_split: str = "train"
    test_split: str = "heldout"
    val_fraction: float = Field(default=0.1, gt=0.0, lt=1.0, description="of each class's train rows")

    @model_validator(mode="after")
    def _check(self) -> DataConfig:
        if len(set(self.columns)) != len(self.columns):
            raise ValueError(f"columns repeat: {self.columns}")
        bad = [c for c in self.columns if "." not in c]
        if bad:
            raise ValueError(f"columns must look like <mode>.<space>, got {bad}")
        if self.class_sources is not None and self.excluded_sources:
            raise ValueError(
                "name the classes (class_sources) or the sources to drop (excluded_sources), not "
                "both: with class_sources every source not named is dropped"
            )
        check_one_role(
            {
                "class_sources": self.class_sources or [],
                "held_out_sources": self.held_out_sources,
                "excluded_sources": self.excluded_sources,
                "architecture_only_sources": self.architecture_only_sources,
            }
        )
        return self

    @property
    def named_sources(self) -> list[str] | None:
        """Every source the config keeps when it names its classes (classes, held out, architecture-only); None
        when it names the dropped ones instead."""
        if self.class_sources is None:
            return None
        return [*self.class_sources, *self.held_out_sources, *self.architecture_only_sources]

    def source_filter(self) -> pc.Expression | None:
        """The rows this config keeps, by source, as a filter for reading (None: every source)."""
        named = self.named_sources
        if named is not None:
            return pc.field("source").isin(named)
        return ~pc.field("source").isin(self.excluded_sources) if self.excluded_sources else None

    def dropped_text(self) -> str:
        """How this config drops sources, for messages."""
        if self.class_sources is not None:
            return f"keeping only {self.named_sources}"
        return f"after excluding {self.excluded_sources}"

    @property
    def prefixes(self) -> list[str]:
        return [self.features] if isinstance(self.features, str) else list(self.features)


@dataclass(frozen=True)
class AttributionData:
    """Arrays of one extraction output, ready to train on (``D`` = input dimension, ``K`` = classes).

    ``x_*`` are float32 ``[N, D]`` raw vectors; ``y_*`` int64 ``[N]`` indices into ``class_names``. In
    ``y_train`` only, a negative label ``-1 - a`` marks a row of an architecture-only source, whose architecture
    is ``arch_names[a]`` (``arch_names``: the classes' architectures, sorted); ``known_train`` selects the
    others. ``x_unknown`` holds the held-out sources' test rows (``unknown_sources`` names each row's source).
    ``column_dims`` gives each input column's width, in order, so a slice of ``x`` can be mapped back to its space.
    """

    class_names: list[str]
    families: dict[str, str]
    architectures: dict[str, str]
    reference_id: str
    columns: list[str]
    column_dims: list[int]
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    x_unknown: np.ndarray
    unknown_sources: list[str] = field(default_factory=list)

    @property
    def input_dim(self) -> int:
        return int(sum(self.column_dims))

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def class_architectures(self) -> list[str]:
        """The architecture of each class, in class order (``DecouplerConfig.architectures``)."""
        return [self.architectures[n] for n in self.class_names]

    @property
    def arch_names(self) -> list[str]:
        return architecture_names(self.class_architectures)

    @property
    def known_train(self) -> np.ndarray:
        """Mask of the train rows that belong to a class (not to an architecture-only source)."""
        return self.y_train >= 0

    def column_slices(self) -> dict[str, slice]:
        """Where each input column lies in ``x``: ``{"one_step.dct": slice(0, 64), ...}``."""
        out, start = {}, 0
        for name, dim in zip(self.columns, self.column_dims):
            out[name] = slice(start, start + dim)
            start += dim
        return out

    def summary(self) -> dict[str, object]:
        """Counts for logs and MLflow params."""
        return {
            "classes": self.num_classes,
            "input_dim": self.input_dim,
            "train_rows": len(self.y_train),
            "architecture_only_rows": int((self.y_train < 0).sum()),
            "val_rows": len(self.y_val),
            "test_rows": len(self.y_test),
            "unknown_rows": len(self.x_unknown),
        }


def _uri_rank(uri: str) -> int:
    return int.from_bytes(hashlib.sha256(uri.encode()).digest()[:8], "big")


def _split_key(uri: str, storage: Storage | None) -> str:
    """What the validation split hashes: the root-relative key of ``uri``, so that the same features under another
    storage root keep their validation rows; a URI outside the root (or no storage given) is hashed as written."""
    if storage is None:
        return uri
    try:
        return storage.relative(uri)
    except StorageError:  # OutsideStorageError included: a table written under another root or by hand
        return uri


def _val_mask(uris: list[str], labels: np.ndarray, fraction: float) -> np.ndarray:
    """Per class, the ``round(fraction * n)`` images (at least 1 when the class has 2+) with the smallest URI
    hash, ``n`` counting distinct URIs: every copy of an image (clean and perturbed) lands on the same side."""
    mask = np.zeros(len(uris), dtype=bool)
    for label in np.unique(labels):
        rows = np.flatnonzero(labels == label)
        distinct = sorted({uris[i] for i in rows}, key=_uri_rank)
        take = min(max(int(round(fraction * len(distinct))), 1 if len(distinct) >= 2 else 0), len(distinct) - 1)
        if take > 0:
            chosen = set(distinct[:take])
            mask[[i for i in rows if uris[i] in chosen]] = True
    return mask


def _gather(table: pa.Table, columns: list[str], dims: list[int], rows_index: np.ndarray) -> np.ndarray:
    """Rows ``rows_index`` of ``columns``, concatenated, as float32 ``[rows, sum(dims)]``. Filled one column at a
    time: the bench input (tens of thousands of rows x 13,568 floats) would otherwise be copied whole several
    times over, which is what ran a training worker out of memory."""
    rows = pa.array(rows_index)
    out = np.empty((len(rows), sum(dims)), dtype=np.float32)
    if not len(rows):
        return out
    start = 0
    for column, dim in zip(columns, dims):
        out[:, start : start + dim] = vectors(table.select([column]).take(rows), column)
        start += dim
    return out


def split_attribution_data(table: pa.Table, cfg: DataConfig, storage: Storage | None = None) -> AttributionData:
    """Build :class:`AttributionData` from a loaded extraction table (see the module docstring for the rules).

    ``storage`` is where the table's URIs live: the validation split hashes them relative to its root."""
    missing = [c for c in (*META_COLUMNS, *cfg.columns) if c not in table.column_names]
    if missing:
        vector_columns = sorted(c for c in table.column_names if "." in c)
        raise ValueError(
            f"extraction output {cfg.features} lacks columns {missing}; vector columns there: {vector_columns}"
        )
    # Rows are chosen by index, in the metadata only: filtering the whole table would copy every vector column.
    by_source = cfg.source_filter()
    wanted = pc.field("ok") if by_source is None else pc.field("ok") & by_source  # a null ok drops its row
    index = table.select(["ok", "source"]).append_column("_row", pa.array(np.arange(table.num_rows)))
    kept = index.filter(wanted)["_row"].to_numpy()
    if len(kept) == 0:
        raise ValueError(f"no ok rows in {cfg.features} ({cfg.dropped_text()})")
    vector_table = table.select(list(cfg.columns))
    table = table.select(list(META_COLUMNS)).take(pa.array(kept))
    references = sorted(set(table["reference_id"].to_pylist()))
    if len(references) != 1:
        raise ValueError(
            f"rows of {cfg.features} come from {len(references)} reference models {references}; "
            "vectors of different reference models do not share a space: extract again or filter"
        )

    source = np.array(table["source"].to_pylist(), dtype=object)
    split = np.array(table["split"].to_pylist(), dtype=object)
    uris = table["uri"].to_pylist()
    families = {str(s): str(f) for s, f in zip(source, table["family"].to_pylist())}
    architectures = {str(s): str(a) for s, a in zip(source, table["arch"].to_pylist())}
    # A misspelt name would otherwise drop a class, or the unknowns, without a word.
    for role in ("class_sources", "held_out_sources", "architecture_only_sources"):
        absent = sorted(set(getattr(cfg, role) or []) - set(families))
        if absent:
            raise ValueError(f"{role} {absent} have no ok rows in {cfg.features}: {sorted(families)}")
    arch_only = np.isin(source, cfg.architecture_only_sources)
    held = np.isin(source, cfg.held_out_sources)
    known = ~held & ~arch_only
    class_names = sorted({str(s) for s in source[known & (split == cfg.train_split)]})
    if len(class_names) < 2:
        raise ValueError(f"need at least two known sources with {cfg.train_split!r} rows, got {class_names}")
    untrained = sorted({str(s) for s in source[known]} - set(class_names))
    if untrained:
        drop = "remove them from class_sources" if cfg.class_sources is not None else "exclude them"
        raise ValueError(f"sources {untrained} have no {cfg.train_split!r} rows: hold them out or {drop}")

    index = {name: i for i, name in enumerate(class_names)}
    y = np.array([index.get(str(s), -1) for s in source], dtype=np.int64)
    arch_names = architecture_names(architectures[n] for n in class_names)
    strangers = sorted({f"{s} ({architectures[s]})" for s in source[arch_only] if architectures[s] not in arch_names})
    if strangers:
        raise ValueError(f"architecture_only_sources {strangers} have an architecture of no class: {arch_names}")
    y[arch_only] = [-1 - arch_names.index(architectures[s]) for s in source[arch_only]]

    train_rows = known & (split == cfg.train_split)
    val = np.zeros(len(y), dtype=bool)
    rows = np.flatnonzero(train_rows)
    val[rows] = _val_mask([_split_key(uris[i], storage) for i in rows], y[rows], cfg.val_fraction)
    train = (train_rows & ~val) | (arch_only & (split == cfg.train_split))
    test = known & (split == cfg.test_split)
    unknown = held & (split == cfg.test_split)
    dims = [vector_table.schema.field(c).type.list_size for c in cfg.columns]  # fixed-size-list columns
    x_train, x_val, x_test, x_unknown = (
        _gather(vector_table, cfg.columns, dims, kept[m]) for m in (train, val, test, unknown)
    )
    return AttributionData(
        class_names=class_names,
        families=families,
        architectures=architectures,
        reference_id=str(references[0]),
        columns=list(cfg.columns),
        column_dims=dims,
        x_train=x_train,
        y_train=y[train],
        x_val=x_val,
        y_val=y[val],
        x_test=x_test,
        y_test=y[test],
        x_unknown=x_unknown,
        unknown_sources=[str(s) for s in source[unknown]],
    )


def _first_part_columns(storage: Storage, prefix: str) -> list[str]:
    names = part_columns(storage, prefix)
    if names is None:
        raise ValueError(f"extraction output {prefix} has no parts: extract it first")
    return names


def _lacks(prefix: str, missing: list[str], names: list[str]) -> ValueError:
    return ValueError(
        f"extraction output {prefix} lacks columns {missing}; "
        f"vector columns there: {sorted(c for c in names if '.' in c)}"
    )


def check_columns(storage: Storage, prefix: str, columns: list[str]) -> None:
    """Refuse ``columns`` that the extraction output ``prefix`` lacks, from one part's schema (no rows read): a
    job that trains several models checks them all before the first one trains."""
    names = _first_part_columns(storage, prefix)
    missing = [c for c in columns if c not in names]
    if missing:
        raise _lacks(prefix, missing, names)


def load_columns(storage: Storage, prefix: str, columns: list[str], rows: pc.Expression | None = None) -> pa.Table:
    """The ``columns`` of one extraction output, less the rows ``rows`` does not select (dropped part by part, so
    they are never all in memory), with a message naming what is there when a column is missing."""
    try:
        return read_parts(storage, prefix, columns=columns, rows=rows)
    except pa.ArrowInvalid as exc:  # a requested column is absent from a part
        names = _first_part_columns(storage, prefix)
        missing = [c for c in columns if c not in names]
        if not missing:  # not a missing column (a damaged part, say): the original error says what
            raise
        raise _lacks(prefix, missing, names) from exc


def load_attribution_data(storage: Storage, cfg: DataConfig) -> AttributionData:
    """Read the extraction output(s) ``cfg.features`` (only the needed columns) and split them."""
    wanted = [*META_COLUMNS, *cfg.columns]
    # The bench's dropped sources are most of its rows: reading them whole ran a training worker out of memory.
    tables = [load_columns(storage, prefix, wanted, cfg.source_filter()) for prefix in cfg.prefixes]
    data = split_attribution_data(pa.concat_tables(tables) if len(tables) > 1 else tables[0], cfg, storage)
    del tables
    # Arrow's allocator (mimalloc) keeps freed buffers: without this a training driver keeps the bench's tables
    # while its worker loads its own copy, and Ray's memory monitor kills the worker.
    pa.default_memory_pool().release_unused()
    return data
