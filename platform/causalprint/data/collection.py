"""A folder or bucket prefix of untrusted image files -> a Ray dataset of canonical images and error rows.

Every listed entry becomes exactly one row, whatever its name (:func:`~causalprint.storage.list_source`); a file
that cannot be read or decoded is a row with ``ok=False`` and its reason, never an exception that stops the job.
Entries the listing refused (a link out of the storage root, a FIFO or device) are error rows that are never
opened.

With a :class:`ReadRetry` (the scan's), a read that fails for a transient reason (throttling, a server error, a
timeout, credentials: :func:`~causalprint.storage.faults.transient_reason`) is not the file's answer: it is tried
again with back-off, and once the tries are spent it either raises :class:`TransientReadError` (``on_transient:
fail``, which fails the job) or becomes an error row with ``retryable=True`` (``row``), which a rerun reads again.
Without one, every read failure is a ``read_failed`` row, as before.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from causalprint.imaging.errors import ImageDecodeError, ImageErrorKind
from causalprint.imaging.intake import IntakeConfig, decode_image
from causalprint.imaging.tiles import AttributionIntakeConfig, decode_tiles
from causalprint.storage.faults import Backoff, transient_reason
from causalprint.storage.listing import Entry, list_source
from causalprint.storage.uri import NotARegularFileError, OutsideStorageError, StorageError

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
# With an AttributionIntakeConfig, ``image`` is ``[N, slots, S, S, 3]`` and these say how many slots hold tiles
# (0 for an error row) and how each image was read (tiles, resize, native; "" for an error row).
TILE_COLUMNS = ("tiles", "intake")
UNKNOWN_SIZE = -1
_MAX_BLOCKS = 512  # a block of URIs is tiny; beyond this, more blocks only add scheduling overhead
_NUM_CPUS = 0.5  # fractional, so decode tasks never take every CPU from the tasks that feed them
RETRYABLE = "retryable"  # the column a ReadRetry adds: the row's error was transient, a rerun reads it again


@dataclass(frozen=True)
class ReadRetry(Backoff):
    """How reads that fail for a transient reason are retried (the :class:`Backoff`), then ``on_transient``:
    ``fail`` raises :class:`TransientReadError`, ``row`` writes an error row marked ``retryable``."""

    on_transient: Literal["fail", "row"] = "fail"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.on_transient not in ("fail", "row"):
            raise ValueError(f"on_transient must be fail or row, got {self.on_transient!r}")


class TransientReadError(StorageError):
    """A read failed for a transient reason on every try: the job stops rather than record it as the file's
    answer."""

    def __init__(self, uri: str, reason: str, detail: str, tries: int) -> None:
        self.uri, self.reason, self.detail, self.tries = uri, reason, detail, tries
        super().__init__(f"could not read {uri} after {tries} tries: {reason}: {detail}")

    def __reduce__(self) -> tuple[type[TransientReadError], tuple[str, str, str, int]]:
        return (type(self), (self.uri, self.reason, self.detail, self.tries))


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
    retry: ReadRetry | None = None,
) -> ray.data.Dataset:
    """A lazy dataset with one row per entry under ``prefix`` (listed with ``ignore`` patterns skipped), per
    entry of ``uris``, or per listed ``entries`` (a listing made by the caller).

    Columns: ``uri`` (full URI), ``ok``, ``error_kind`` and ``error`` (``""`` when ok), and ``image``, a uint8
    ``(size, size, 3)`` tensor (zeros when not ok); with an
    :class:`~causalprint.imaging.tiles.AttributionIntakeConfig`, ``image`` is ``(slots, size, size, 3)``, the
    image's native-resolution tiles, and :data:`TILE_COLUMNS` say how many there are and how it was read.
    ``prefix`` and every entry of ``uris`` (root-relative or full URIs; duplicates dropped) go through
    :meth:`Storage.resolve`, so an outside-root URI raises :class:`~causalprint.storage.OutsideStorageError` here,
    before anything is read; a missing ``prefix`` raises :class:`~causalprint.storage.MissingSourceError`. Ray must
    be initialised. With ``retry``, transient read
    failures are retried, then fail the dataset or become rows marked in a ``retryable`` column (module docstring).
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
    columns = {
        "uri": pa.array(names, pa.string()),
        "size": pa.array([e.size for e in entries], pa.int64()),
        "error_kind": pa.array([e.problem for e in entries], pa.string()),
        "error": pa.array([e.reason for e in entries], pa.string()),
    }
    if metadata:
        if uris is None or len(names) != len(uris):
            raise ValueError("metadata needs explicit, duplicate-free uris of the same length")
        columns.update({k: pa.array(list(v)) for k, v in metadata.items() if k not in columns})
    table = pa.table(columns)
    blocks = max(1, min(math.ceil(len(names) / batch_size), _MAX_BLOCKS))
    return ray.data.from_arrow(table, override_num_blocks=blocks).map_batches(
        decode_rows,  # type: ignore[arg-type]  # Ray types a UDF as one-argument; fn_kwargs passes the rest
        fn_kwargs={"storage": storage, "config": config, "retry": retry},
        batch_format="numpy",
        batch_size=batch_size,
        num_cpus=_NUM_CPUS,
        udf_modifying_row_count=False,
    )


def decode_rows(
    batch: dict[str, np.ndarray], storage: Storage, config: IntakeConfig, retry: ReadRetry | None = None
) -> dict[str, np.ndarray]:
    """Read and decode one batch: ``uri`` (and optional ``size``, -1 = unknown, and ``error_kind``/``error`` of
    entries the listing refused, which are passed on unopened) in, the dataset columns out (with ``retry``, also
    ``retryable``).

    Never raises for a bad file; with ``retry`` and ``on_transient="fail"``, raises :class:`TransientReadError`
    for a read that failed for a transient reason on every try. Usable without Ray.
    """
    uris = [str(u) for u in batch["uri"]]
    sizes = batch.get("size")
    listed_kinds, listed_reasons = batch.get("error_kind"), batch.get("error")
    slots = (config.slots,) if isinstance(config, AttributionIntakeConfig) else ()
    images = np.zeros((len(uris), *slots, config.size, config.size, 3), dtype=np.uint8)
    counts = np.zeros(len(uris), dtype=np.int32)
    intakes = np.full(len(uris), "", dtype=object)
    ok = np.zeros(len(uris), dtype=bool)
    retryable = np.zeros(len(uris), dtype=bool)
    kinds: list[str] = []
    reasons: list[str] = []
    for i, uri in enumerate(uris):
        known = int(sizes[i]) if sizes is not None else UNKNOWN_SIZE
        if listed_kinds is not None and listed_kinds[i]:
            kinds.append(str(ImageErrorKind(str(listed_kinds[i]))))
            reasons.append(str(listed_reasons[i]) if listed_reasons is not None else "")
            continue
        try:
            data = _read_checked(storage, uri, known, config, retry)
            if isinstance(config, AttributionIntakeConfig):
                tiles = decode_tiles(data, uri, config)
                images[i], counts[i], intakes[i] = tiles.padded(config.slots), len(tiles.images), tiles.intake
            else:
                images[i] = decode_image(data, uri, config)
        except TransientReadError as exc:
            if retry is None or retry.on_transient == "fail":
                raise
            kinds.append(str(ImageErrorKind.READ_FAILED))
            reasons.append(f"{exc.reason} after {exc.tries} tries (retryable): {exc.detail}")
            retryable[i] = True
            continue
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
    passthrough = {k: v for k, v in batch.items() if k not in ("uri", "size", RETRYABLE, *COLUMNS, *TILE_COLUMNS)}
    out = {
        **passthrough,
        "uri": np.array(uris, dtype=object),
        "ok": ok,
        "error_kind": np.array(kinds, dtype=object),
        "error": np.array(reasons, dtype=object),
        "image": images,
    }
    if slots:
        out.update(tiles=counts, intake=intakes)
    if retry is not None:
        out[RETRYABLE] = retryable
    return out


def _read_checked(storage: Storage, uri: str, size: int, config: IntakeConfig, retry: ReadRetry | None = None) -> bytes:
    """The file's bytes in one request (one GET on S3, no HEAD before it), refusing an oversized file: by its
    listed size without reading it, else from the read itself, which fetches at most ``max_bytes + 1`` bytes.
    With ``retry``, a transient failure is read again after a pause, and raises :class:`TransientReadError` once
    the tries are spent."""
    tries = 0
    while True:
        try:
            return _read_once(storage, uri, size, config)
        except ImageDecodeError as exc:
            cause = exc.__cause__
            if retry is None or cause is None or exc.kind != ImageErrorKind.READ_FAILED:
                raise
            reason = transient_reason(cause)
            if reason is None:  # about the file itself (no such file): its row says so
                raise
            tries += 1
            if tries >= retry.attempts:
                raise TransientReadError(uri, reason, f"{type(cause).__name__}: {cause}", tries) from cause
            time.sleep(retry.delay(tries))


def _read_once(storage: Storage, uri: str, size: int, config: IntakeConfig) -> bytes:
    try:
        if size != UNKNOWN_SIZE and size > config.max_bytes:
            raise ImageDecodeError(
                uri, ImageErrorKind.TOO_LARGE_BYTES, f"{size} bytes exceeds max_bytes {config.max_bytes}"
            )
        data = storage.read_at_most(uri, config.max_bytes + 1)
        if len(data) > config.max_bytes:
            raise ImageDecodeError(
                uri,
                ImageErrorKind.TOO_LARGE_BYTES,
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
