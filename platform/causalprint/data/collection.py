"""A folder or bucket prefix of untrusted image files -> a Ray dataset of canonical images and error rows.

Every listed entry becomes exactly one row, whatever its name (:func:`~causalprint.storage.list_source`); a file
that cannot be read or decoded is a row with ``ok=False`` and its reason, never an exception that stops the job.
Entries the listing refused (a link out of the storage root, a FIFO or device) are error rows that are never
opened.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from causalprint.imaging.errors import ImageDecodeError, ImageErrorKind
from causalprint.imaging.intake import IntakeConfig, decode_image
from causalprint.storage.listing import Entry, list_source
from causalprint.storage.uri import NotARegularFileError, OutsideStorageError

if TYPE_CHECKING:
    import ray.data

    from causalprint.storage import Storage

# Image files by name, for a job that picks images out of a folder (extraction); a collection lists every file
# and intake names each refusal.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
# The ignore patterns of the scan and the inventory unless configured: the marker the zoo writes beside a finished
# source's images (zoo/build.py). Skipped files are counted in the summary, never dropped silently.
DEFAULT_IGNORE = ("_DONE.json",)
COLUMNS = ("uri", "ok", "error_kind", "error", "image")
UNKNOWN_SIZE = -1
_MAX_BLOCKS = 512  # a block of URIs is tiny; beyond this, more blocks only add scheduling overhead
_NUM_CPUS = 0.5  # fractional, so decode tasks never take every CPU from the tasks that feed them


def read_collection(
    storage: Storage,
    prefix: str,
    config: IntakeConfig,
    *,
    uris: Sequence[str] | None = None,
    entries: Sequence[Entry] | None = None,
    ignore: Sequence[str] = (),
    metadata: Mapping[str, Sequence[Any]] | None = None,
    batch_size: int = 64,
) -> ray.data.Dataset:
    """A lazy dataset with one row per entry under ``prefix`` (listed with ``ignore`` patterns skipped), per
    entry of ``uris``, or per listed ``entries`` (a listing made by the caller).

    Columns: ``uri`` (full URI), ``ok``, ``error_kind`` and ``error`` (``""`` when ok), and ``image``, a uint8
    ``(size, size, 3)`` tensor (zeros when not ok). ``prefix`` and every entry of ``uris`` (root-relative or full
    URIs; duplicates dropped) go through :meth:`Storage.resolve`, so an outside-root URI raises
    :class:`~causalprint.storage.OutsideStorageError` here, before anything is read; a missing ``prefix`` raises
    :class:`~causalprint.storage.MissingSourceError`. Ray must be initialised.
    """
    import pyarrow as pa
    import ray.data

    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    root = storage.resolve(prefix)
    if uris is not None:
        names = list(dict.fromkeys(storage.resolve(u) for u in uris))
        # Sizes are looked up in the worker, next to the read.
        entries = [Entry(name) for name in names]
    elif entries is None:
        entries = list_source(storage, root, ignore).entries
    names = [e.uri for e in entries]
    columns = {"uri": pa.array(names, pa.string()), "size": pa.array([e.size for e in entries], pa.int64()),
               "error_kind": pa.array([e.problem for e in entries], pa.string()),
               "error": pa.array([e.reason for e in entries], pa.string())}
    if metadata:
        if uris is None or len(names) != len(uris):
            raise ValueError("metadata needs explicit, duplicate-free uris of the same length")
        columns.update({k: pa.array(list(v)) for k, v in metadata.items() if k not in columns})
    table = pa.table(columns)
    blocks = max(1, min(math.ceil(len(names) / batch_size), _MAX_BLOCKS))
    return ray.data.from_arrow(table, override_num_blocks=blocks).map_batches(
        decode_rows,
        fn_kwargs={"storage": storage, "config": config},
        batch_format="numpy",
        batch_size=batch_size,
        num_cpus=_NUM_CPUS,
        udf_modifying_row_count=False,
    )


def decode_rows(batch: dict[str, np.ndarray], storage: Storage, config: IntakeConfig) -> dict[str, np.ndarray]:
    """Read and decode one batch: ``uri`` (and optional ``size``, -1 = unknown, and ``error_kind``/``error`` of
    entries the listing refused, which are passed on unopened) in, the dataset columns out.

    Never raises for a bad file; usable without Ray.
    """
    uris = [str(u) for u in batch["uri"]]
    sizes = batch.get("size")
    listed_kinds, listed_reasons = batch.get("error_kind"), batch.get("error")
    images = np.zeros((len(uris), config.size, config.size, 3), dtype=np.uint8)
    ok = np.zeros(len(uris), dtype=bool)
    kinds: list[str] = []
    reasons: list[str] = []
    for i, uri in enumerate(uris):
        known = int(sizes[i]) if sizes is not None else UNKNOWN_SIZE
        if listed_kinds is not None and listed_kinds[i]:
            kinds.append(str(ImageErrorKind(str(listed_kinds[i]))))
            reasons.append(str(listed_reasons[i]) if listed_reasons is not None else "")
            continue
        try:
            images[i] = decode_image(_read_checked(storage, uri, known, config), uri, config)
        except ImageDecodeError as exc:
            kinds.append(str(exc.kind))
            reasons.append(exc.reason)
            continue
        except Exception as exc:  # decode_image promises ImageDecodeError only; one bad file must not sink a batch
            kinds.append(str(ImageErrorKind.CORRUPT))
            reasons.append(f"unexpected {type(exc).__name__}: {exc}")
            continue
        ok[i] = True
        kinds.append("")
        reasons.append("")
    passthrough = {k: v for k, v in batch.items() if k not in ("uri", "size", *COLUMNS)}
    return {
        **passthrough,
        "uri": np.array(uris, dtype=object),
        "ok": ok,
        "error_kind": np.array(kinds, dtype=object),
        "error": np.array(reasons, dtype=object),
        "image": images,
    }


def _read_checked(storage: Storage, uri: str, size: int, config: IntakeConfig) -> bytes:
    """The file's bytes in one request (one GET on S3, no HEAD before it), refusing an oversized file: by its
    listed size without reading it, else from the read itself, which fetches at most ``max_bytes + 1`` bytes."""
    try:
        if size != UNKNOWN_SIZE and size > config.max_bytes:
            raise ImageDecodeError(
                uri, ImageErrorKind.TOO_LARGE_BYTES, f"{size} bytes exceeds max_bytes {config.max_bytes}"
            )
        data = storage.read_at_most(uri, config.max_bytes + 1)
        if len(data) > config.max_bytes:
            raise ImageDecodeError(
                uri, ImageErrorKind.TOO_LARGE_BYTES,
                f"over max_bytes {config.max_bytes} (reading stopped at {len(data)} bytes)",
            )
        return data
    except ImageDecodeError:
        raise
    except OutsideStorageError as exc:
        raise ImageDecodeError(uri, ImageErrorKind.OUTSIDE_ROOT, f"{exc} (never read)") from exc
    except NotARegularFileError as exc:
        raise ImageDecodeError(uri, ImageErrorKind.NOT_A_FILE, str(exc)) from exc
    except Exception as exc:  # missing file, permissions, network: the row says so and the job goes on
        raise ImageDecodeError(uri, ImageErrorKind.READ_FAILED, f"{type(exc).__name__}: {exc}") from exc
