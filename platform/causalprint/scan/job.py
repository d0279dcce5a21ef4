"""The provenance scan: a folder or bucket prefix -> read/decode -> residual -> features -> attributor -> report.

Everything is checked before an image is read: SOURCE exists and holds files, SOURCE lies inside storage or inside
one of the allowed read-only ``sources`` (:func:`~causalprint.storage.sources.open_source`), the output lies inside
storage, the model URI pins one version, that version records how its features were extracted, and the reference
model is the one it was trained on. Then, holding the report's lease (one writer per report), every entry under
SOURCE not yet in the report (listed a page at a time by :class:`~causalprint.storage.SourcePages`, run a chunk at
a time) is read and decoded on Ray Data (a bad file, a link out of the root or a FIFO is an error row; a transient
read error is retried, then fails the scan or is a row marked retryable), attributed by
:class:`~causalprint.scan.image_attributor.ImageAttributor` actors and written as report parts
(:mod:`causalprint.scan.report`).
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Iterator
from typing import Any

import numpy as np

from causalprint.data.collection import RETRYABLE, ReadRetry, read_collection
from causalprint.data.parts import done_uris, drop_rows, written_uris
from causalprint.extraction.pipeline import actor_resources
from causalprint.imaging.tiles import AttributionIntakeConfig
from causalprint.progress import ProgressLogger
from causalprint.runtime.ray_local import ensure_ray
from causalprint.scan.attributor import ModelRef
from causalprint.scan.config import ScanJobConfig
from causalprint.scan.errors import ScanError, ScanInterrupted
from causalprint.scan.image_attributor import ImageAttributor
from causalprint.scan.report import (
    LEASE_NAME,
    SUMMARY_NAME,
    PartHook,
    default_output,
    new_run_id,
    pin_scan,
    report_prefix,
    summarize,
    write_report_part,
)
from causalprint.storage import Entry, SourcePages, Storage, StorageError
from causalprint.storage.faults import transient_reason
from causalprint.storage.lease import Lease
from causalprint.storage.sources import open_source
from causalprint.tracking.mlflow_setup import tracking_uri_for

log = logging.getLogger(__name__)


class ScanActor:
    """The scan's Ray Data actor: the one attribution path (:class:`ImageAttributor`, also what a single
    request calls), then the batch's report part, in the same worker. A separate write stage would wait behind
    the actors' CPU budget and run as a tail once they finish.

    With ``fail_transient`` (``scan.on_transient: fail``), rows whose read failed for a transient reason are not
    written: the batch's other rows are, and the counts passed on name the first such file, so that the driver
    stops the scan (an exception raised here would reach the driver without its type or message)."""

    def __init__(
        self,
        *,
        prefix: str,
        run: str,
        on_part: PartHook | None,
        fail_transient: bool = False,
        lease_holder: str | None = None,
        **pipeline: Any,
    ) -> None:
        self.pipeline = ImageAttributor(**pipeline)
        self.fail_transient = fail_transient
        self.write = {
            "storage": pipeline["storage"],
            "prefix": prefix,
            "run": run,
            "class_names": self.pipeline.class_names,
            "on_part": on_part,
            "lease_holder": lease_holder,
        }

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        rows = self.pipeline(batch)
        failed = np.asarray(rows.get(RETRYABLE, np.zeros(len(rows["uri"]), dtype=bool)), dtype=bool)
        first = ""
        if self.fail_transient and failed.any():
            i = int(np.flatnonzero(failed)[0])
            first = f"could not read {rows['uri'][i]}: {rows['error'][i]}"
            rows = {key: value[~failed] for key, value in rows.items()}
        else:
            failed = np.zeros_like(failed)
        counts = (
            write_report_part(rows, **self.write)
            if len(rows["uri"])
            else {"written": np.array([0]), "ok": np.array([0])}
        )
        return {
            **counts,
            "transient": np.array([int(failed.sum())]),
            "transient_error": np.array([first], dtype=object),
        }


class TransientStop(Exception):
    """A file could not be read for a transient reason and ``scan.on_transient`` is ``fail``."""


def _prepare(
    job: ScanJobConfig, storage: Storage, tracking_uri: str, source: str
) -> tuple[ModelRef, dict[str, Any], AttributionIntakeConfig]:
    """Pin the model and build the attribution path once in the driver, so that every check an actor would make
    (reference, image size, feature widths) refuses the scan before its report is pinned; returns the model, the
    report's pinned metadata and the intake config."""
    cfg = job.scan
    if not storage.exists(storage.resolve(cfg.reference)):
        raise ScanError(
            f"scan.reference {storage.resolve(cfg.reference)}: no such folder in storage; set it to the "
            "reference model the attributor was trained with (e.g. models/reference/tiny)"
        )
    # On the CPU: the driver only checks, and a CUDA context here would hold accelerator memory for the whole scan.
    pipeline = ImageAttributor(
        storage,
        cfg.model,
        cfg.reference,
        tracking_uri=tracking_uri,
        precision=cfg.precision,
        decision=cfg.decision,
        device="cpu",
    )
    intake = pipeline.attribution_intake(job.intake)
    meta = {
        "source": source,
        "model_version": pipeline.model_version,
        "reference_id": pipeline.reference_id,
        "columns": pipeline.spec.columns,
        "decision": cfg.decision,
        "class_names": pipeline.class_names,
        "intake": {"mode": intake.mode, "tiles": intake.tiles},
    }
    model = pipeline.model
    assert model is not None  # built from a model URI above, so it holds its registry reference
    del pipeline  # the actors hold the models from here on
    return model, meta, intake


def build_dataset(
    storage: Storage,
    job: ScanJobConfig,
    pending: list[Entry],
    *,
    model: ModelRef,
    tracking_uri: str,
    intake: AttributionIntakeConfig,
    prefix: str,
    run: str,
    on_part: PartHook | None = None,
    reader: Storage | None = None,
    lease_holder: str | None = None,
):
    """The lazy Ray Data pipeline over the ``pending`` entries, read with ``reader`` (a source's storage; default
    ``storage``), attributed and written into ``storage`` (returns the counts of each written part)."""
    from ray.data import ActorPoolStrategy

    cfg = job.scan
    # Transient failures come back as rows either way; with on_transient=fail the actor stops the scan on them.
    retry = ReadRetry(attempts=cfg.read_attempts, backoff_s=cfg.read_backoff_s, on_transient="row")
    ds = read_collection(reader or storage, "", intake, entries=pending, batch_size=cfg.batch_size, retry=retry)
    return ds.map_batches(
        ScanActor,
        fn_constructor_kwargs={
            "storage": storage,
            "model_uri": model.uri,
            "reference": cfg.reference,
            "tracking_uri": tracking_uri,
            "precision": cfg.precision,
            "decision": cfg.decision,
            "prefix": prefix,
            "run": run,
            "on_part": on_part,
            "fail_transient": cfg.on_transient == "fail",
            "lease_holder": lease_holder,
        },
        compute=ActorPoolStrategy(min_size=cfg.actors.min_actors, max_size=cfg.actors.max_actors),
        batch_size=cfg.batch_size,
        **actor_resources(cfg.actors),
    )


def _execute(datasets: Iterator[tuple[int, Any]]) -> dict[str, Any]:
    """Run each chunk's pipeline in turn, logging progress; returns the rows written and the rates: overall (actor
    start-up included) and steady (after the first part, which is what more images would cost). The clock runs
    from the first chunk's start, and includes listing the chunks after it."""
    progress: ProgressLogger | None = None
    written, first_rows, first_s, start = 0, 0, 0.0, time.perf_counter()
    for size, ds in datasets:
        if progress is None:
            progress = ProgressLogger("scan", size, unit="images")
        else:
            progress.total += size  # the files to do so far: the listing is still going on
        for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
            stopped = np.flatnonzero(batch["transient"])
            if len(stopped):
                raise TransientStop(str(batch["transient_error"][stopped[0]]))
            count = int(batch["written"].sum())
            if not written:
                first_rows, first_s = count, time.perf_counter() - start
            written += count
            progress.update(count)
    seconds = time.perf_counter() - start
    steady = (written - first_rows) / (seconds - first_s) if written > first_rows and seconds > first_s else 0.0
    return {
        "written": written,
        "seconds": round(seconds, 2),
        "images_per_second": round(written / seconds, 2) if seconds > 0 else 0.0,
        "first_part_seconds": round(first_s, 2),
        "steady_images_per_second": round(steady, 2),
    }


def _transient_listing(source: str, exc: Exception) -> ScanError | None:
    """The refusal of a listing that failed for a transient reason (credentials, throttling, the endpoint)."""
    reason = transient_reason(exc)
    if reason is None:
        return None
    return ScanError(
        f"cannot list {source}: {reason}: {exc}. Check the credentials and endpoint of this location "
        "(`sources`, or `storage` for the storage root) or wait, then rerun: the report keeps what was written"
    )


class _Listed:
    """A source's listing, read up to its first page that holds an entry (``pages`` goes on from there)."""

    def __init__(self, storage: Storage, source: str, ignore: tuple[str, ...], page_size: int) -> None:
        self.source = source
        try:
            self.listing = SourcePages(storage, source, ignore, page_size)
            pages = self._guarded(iter(self.listing))
            head = next((page for page in pages if page), None)
        except StorageError:
            raise
        except Exception as exc:
            refusal = _transient_listing(source, exc)
            if refusal is None:
                raise
            raise refusal from exc
        if head is None:
            skipped = ", ".join(f"{n} {reason}" for reason, n in self.listing.skipped.items())
            raise ScanError(f"nothing to scan: {source} holds no files" + (f" (skipped: {skipped})" if skipped else ""))
        self.pages: Iterator[list[Entry]] = itertools.chain([head], pages)

    def _guarded(self, pages: Iterator[list[Entry]]) -> Iterator[list[Entry]]:
        """The pages; a later page that cannot be listed for a transient reason stops the scan saying so."""
        while True:
            try:
                page = next(pages, None)
            except StorageError:
                raise
            except Exception as exc:
                refusal = _transient_listing(self.source, exc)
                if refusal is None:
                    raise
                raise refusal from exc
            if page is None:
                return
            yield page


class _Chunks:
    """The listing gathered, page by page, into chunks of at least ``size`` entries not yet in the report
    (``done``): the driver holds the chunk being scanned, the next one and the page being read, never the whole
    listing. Counts the entries it skipped as already done, and the largest chunk it held; ``first`` is the first
    chunk (``None``: every file is done)."""

    def __init__(self, pages: Iterator[list[Entry]], done: set[str], size: int) -> None:
        self.done, self.size = done, size
        self.skipped = 0
        self.largest = 0
        self._iter = self._chunks(pages)
        self.first = next(self._iter, None)

    def rest(self) -> Iterator[list[Entry]]:
        return self._iter

    def _chunks(self, pages: Iterator[list[Entry]]) -> Iterator[list[Entry]]:
        chunk: list[Entry] = []
        for page in pages:
            for entry in page:
                if entry.uri in self.done:
                    self.skipped += 1
                else:
                    chunk.append(entry)
            if len(chunk) >= self.size:
                self.largest = max(self.largest, len(chunk))
                yield chunk
                chunk = []
        if chunk:
            self.largest = max(self.largest, len(chunk))
            yield chunk


def run_scan(job: ScanJobConfig, *, on_part: PartHook | None = None) -> dict[str, Any]:
    """Scan every image under ``scan.source`` not yet in the report; returns (and stores) the summary.

    The listing streams: the driver reads it a page at a time and runs the files not yet in the report a chunk at a
    time (``scan.chunk_size``), so it holds at most two chunks (the one scanned, the next), one page and the set of
    URIs already in the report, never the whole listing. ``on_part(storage, prefix)`` runs in the writer before each
    part (telemetry, fault tests); it must be picklable."""
    storage = Storage(job.storage)
    cfg = job.scan
    opened = open_source(storage, job.sources, cfg.source)  # refuse what lies outside storage and the sources
    source = opened.uri
    derived = default_output(cfg.reports, source, opened.label)
    output = storage.resolve(cfg.output or derived)
    listed = _Listed(opened.storage, source, cfg.ignore, cfg.list_page_size)  # refuses a source with no file
    tracking_uri = tracking_uri_for(job.mlflow, storage)
    model, meta, intake = _prepare(job, storage, tracking_uri, source)
    prefix = report_prefix(output, model.slug)
    # The exact flag: the source's own report when the user chose another, else a new folder beside it.
    own = derived if cfg.output and storage.resolve(derived) != output else f"{derived}-2"
    fix = f"give this scan its own report with --set scan.output={own}" + (
        " (or leave scan.output out: each source gets its own report)" if cfg.output else ""
    )
    run = new_run_id()
    holder = f"scan run {run} of {source}"
    with Lease(storage, f"{prefix}/{LEASE_NAME}", what=holder, ttl_s=cfg.lease_s) as lease:
        pin_scan(storage, prefix, meta, fix)
        # The URIs already in the report: held whole (they grow with the report, not with the listing).
        done, again = written_uris(storage, prefix, retry_errors=cfg.retry_errors)
        chunks = _Chunks(listed.pages, done, cfg.chunk_size)
        redone = 0

        def datasets(first: list[Entry]) -> Iterator[tuple[int, Any]]:
            nonlocal redone
            for chunk in itertools.chain([first], chunks.rest()):
                # Rows read again (retryable, or every error row with --retry-errors) leave the report first; a
                # crash after this leaves them pending, never twice.
                if again:
                    redone += drop_rows(storage, prefix, again & {entry.uri for entry in chunk})
                log.info(
                    "scan %s with %s: %d files listed so far, %d of them already in the report; "
                    "reading a chunk of %d (run %s)",
                    source,
                    model.uri,
                    listed.listing.listed,
                    chunks.skipped,
                    len(chunk),
                    run,
                )
                yield (
                    len(chunk),
                    build_dataset(
                        storage,
                        job,
                        chunk,
                        model=model,
                        tracking_uri=tracking_uri,
                        intake=intake,
                        prefix=prefix,
                        run=run,
                        on_part=on_part,
                        reader=opened.storage,
                        lease_holder=holder,
                    ),
                )

        timing = dict.fromkeys(("seconds", "images_per_second", "first_part_seconds", "steady_images_per_second"), 0.0)
        timing["written"] = 0
        if chunks.first is not None:
            try:
                ensure_ray(job.ray)  # before the clock starts: images/s is the pipeline's rate, not Ray's start-up
                log.info("scan: Ray is up")
                timing = _execute(datasets(chunks.first))
            except KeyboardInterrupt:
                raise ScanInterrupted(len(done_uris(storage, prefix))) from None
            except TransientStop as exc:
                raise ScanError(
                    f"{exc}; the scan stopped with {len(done_uris(storage, prefix))} images in the report "
                    f"{prefix}. Fix the cause (credentials, endpoint) or wait, then rerun the same command to go "
                    "on; or set scan.on_transient=row to record such files as retryable rows and go on"
                ) from exc
        lease.check()
        summary = {
            "source": source,
            "report": prefix,
            "model_version": model.uri,
            "reference_id": meta["reference_id"],
            "intake_size": intake.size,
            "intake": {"mode": intake.mode, "tiles": intake.tiles},
            **summarize(storage, prefix),
            "run": {
                "id": run,
                "listed": listed.listing.listed,
                "skipped": chunks.skipped,
                "again": redone,
                "not_listed": dict(listed.listing.skipped),
                "largest_chunk": chunks.largest,
                **timing,
            },
        }
        storage.write_json(f"{prefix}/{SUMMARY_NAME}", summary)
    log.info(
        "scan: %d images in the report, %d errors, %d unknown; this run %s",
        summary["images"],
        summary["errors"],
        summary["unknown"],
        summary["run"],
    )
    return summary
