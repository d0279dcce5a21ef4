"""Images to open-set source decisions: the one code path of the scan's Ray Data actors and of single requests."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any, Literal, TypeVar

import numpy as np

from causalprint.attribution.model import Codes
from causalprint.extraction.actors import FeatureActor, ResidualActor
from causalprint.imaging.intake import IntakeConfig
from causalprint.imaging.tiles import AttributionIntakeConfig
from causalprint.scan.attributor import (
    ModelRef,
    check_reference,
    decision_classes,
    extraction_spec,
    fetch_attributor,
    resolve_model,
)
from causalprint.scan.errors import ScanError
from causalprint.scan.tile_decision import TileDecisions, decide_tiles, per_image
from causalprint.storage import Storage
from causalprint.tracking.artifacts import LoadedAttributor

IntakeT = TypeVar("IntakeT", bound=IntakeConfig)
# Columns that __call__ adds to a batch. No value is "" in the text columns (an object column of Nones does not
# survive Ray Data's hand-off between stages: it comes back as NaN, or as "nan" once merged with strings), NaN in
# the float columns, 0 in the counts and False in ``unknown``. The last five say how the image was read and the
# spread of its tiles (scan.tile_decision).
RESULT_COLUMNS = (
    "predicted",
    "source_family",
    "architecture",
    "unknown",
    "confidence",
    "probabilities",
    "model_version",
    "reference_id",
    "intake",
    "tiles",
    "tiles_agreeing",
    "tile_top_min",
    "tile_top_max",
)


class ImageAttributor:
    """uint8 images ``[N, S, S, 3]`` (or each as tiles, ``[N, T, S, S, 3]`` with a ``tiles`` count per image) ->
    residuals -> feature vectors -> the attributor's open-set decisions, one per image
    (:mod:`causalprint.scan.tile_decision`).

    Built once per process (a Ray Data actor, a Serve replica, a test) from the attributor at ``model_uri`` (an
    alias is pinned to its version here; ``model_version`` names it), the reference model folder ``reference``
    (refused unless it is the one the attributor was trained on) and the feature spaces its requirements name,
    on ``device`` (None: the accelerator when there is one).
    The residual and feature steps are the extraction job's own :class:`ResidualActor` and :class:`FeatureActor`,
    run in-process, so vectors are made exactly as in training. ``__call__`` serves Ray Data batches;
    :meth:`attribute_images` wraps it for in-memory images.
    """

    def __init__(
        self,
        storage: Storage,
        model_uri: str,
        reference: str,
        *,
        tracking_uri: str | None = None,
        precision: str = "float32",
        decision: Literal["logits", "prototypes"] = "prototypes",
        device: str | None = None,
    ) -> None:
        model = resolve_model(model_uri, tracking_uri)
        self.model: ModelRef | None = model
        self._build(
            storage,
            fetch_attributor(model, tracking_uri, storage.endpoint_url),
            model.uri,
            reference,
            precision,
            decision,
            device,
        )

    @classmethod
    def from_attributor(
        cls,
        storage: Storage,
        attributor: LoadedAttributor,
        version: str,
        reference: str,
        *,
        precision: str = "float32",
        decision: Literal["logits", "prototypes"] = "prototypes",
        device: str | None = None,
    ) -> ImageAttributor:
        """The same path around an attributor already loaded (e.g. from a folder, with no model URI at hand);
        ``version`` is what the ``model_version`` column names."""
        built = cls.__new__(cls)
        built.model = None  # no registered version: ``version`` alone names it
        built._build(storage, attributor, version, reference, precision, decision, device)
        return built

    def _build(
        self,
        storage: Storage,
        attributor: LoadedAttributor,
        version: str,
        reference: str,
        precision: str,
        decision: Literal["logits", "prototypes"],
        device: str | None,
    ) -> None:
        self.model_version = version
        self.attributor = attributor
        self.spec = extraction_spec(attributor, version)
        self.residuals = ResidualActor(storage, reference, self.spec.modes, precision, device)
        self.reference_id = self.residuals.reference.identity.id
        check_reference(self.spec, self.reference_id, reference)
        if self.residuals.reference.image_size != self.spec.image_size:
            raise ScanError(
                f"reference {reference} works at {self.residuals.reference.image_size} px, the "
                f"attributor's features were extracted at {self.spec.image_size} px"
            )
        self.features = FeatureActor(
            storage, self.spec.spaces, self.spec.image_size, columns=self.spec.columns, device=device
        )
        width = sum(self.features.spaces[c.partition(".")[2]].dim for c in self.spec.columns)
        if self.spec.input_dim and width != self.spec.input_dim:  # refused before any image is read
            raise ScanError(
                f"columns {self.spec.columns} give {width} dims here, the attributor takes "
                f"{self.spec.input_dim}: the feature spaces differ from training"
            )
        self.decider = attributor.calibration.attributor(decision)
        config = attributor.model.config
        assert config.class_names is not None  # training sets a model's class names
        self._class_architecture = dict(zip(config.class_names, config.architectures or ()))
        self.class_names = decision_classes(attributor, decision)

    @property
    def image_size(self) -> int:
        return self.spec.image_size

    def intake(self, config: IntakeConfig | None = None) -> IntakeConfig:
        """``config`` (default: intake at :attr:`image_size`; a config that leaves ``size`` out gets it too),
        refused when it decodes to another size than the attributor's features were extracted at: one canonical
        image per file (what anonymization edits)."""
        return self._sized(config or IntakeConfig(size=self.image_size))

    def attribution_intake(self, config: AttributionIntakeConfig | None = None) -> AttributionIntakeConfig:
        """The scan's and enrolment's intake: :meth:`intake`'s check, with native tiles of a larger image by
        default (:mod:`causalprint.imaging.tiles`)."""
        return self._sized(config or AttributionIntakeConfig(size=self.image_size))

    def _sized(self, config: IntakeT) -> IntakeT:
        if "size" not in config.model_fields_set:  # `intake: {mode: resize}` means at the model's size
            config = config.model_copy(update={"size": self.image_size})
        if config.size != self.image_size:
            raise ScanError(
                f"intake.size is {config.size} but the attributor's features were extracted at "
                f"{self.image_size} px; set intake.size={self.image_size}"
            )
        return config

    def vectors(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        """The attributor's input ``[N, D]``: the requirements' columns of every row, concatenated in order."""
        features = self.features(self.residuals(batch))
        return np.concatenate([features[c] for c in self.spec.columns], axis=1)

    def codes(self, batch: dict[str, np.ndarray]) -> Codes:
        """The attributor's codes and logits of a batch of ok images (:meth:`vectors`, then the encoder), with the
        generated head's scores when the attributor has one."""
        return self.attributor.codes(self.vectors(batch))

    def tile_decisions(self, images: np.ndarray, tiles: np.ndarray | None = None) -> TileDecisions:
        """The decisions of ok images, ``[N, S, S, 3]`` or tiles ``[N, T, S, S, 3]`` of which the first
        ``tiles[i]`` are image ``i``'s: every tile through :meth:`codes`, then the rule of
        :mod:`causalprint.scan.tile_decision`."""
        flat, counts = _tiles(images, tiles)
        codes = self.codes({"ok": np.ones(len(flat), dtype=bool), "image": flat})
        found = decide_tiles(self.decider, codes, counts)
        if codes.generated is None:
            return found
        # The generated head: the mean of the tiles' scores, then its revision (causalprint.attribution.generated).
        generated = per_image(codes.generated, counts)
        decisions = self.attributor.revise(found.decisions, found.probabilities, generated, self.class_names)
        return replace(found, decisions=decisions)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """A batch with ``ok`` and ``image`` (uint8 ``[N, S, S, 3]``, or ``[N, T, S, S, 3]`` with ``tiles``, and
        ``intake``, as :func:`~causalprint.data.collection.decode_rows` reads them) -> the batch without pixels,
        plus :data:`RESULT_COLUMNS`; ``probabilities`` is float32 ``[N, K]`` over :attr:`class_names`."""
        ok = np.asarray(batch["ok"], dtype=bool)
        n, k = len(ok), len(self.class_names)
        out = {key: value for key, value in batch.items() if key != "image"}
        predicted, family = np.full(n, "", dtype=object), np.full(n, "", dtype=object)
        architecture = np.full(n, "", dtype=object)
        unknown = np.zeros(n, dtype=bool)
        confidence = np.full(n, np.nan, dtype=np.float32)
        probabilities = np.full((n, k), np.nan, dtype=np.float32)
        tiles, agreeing = np.zeros(n, dtype=np.int32), np.zeros(n, dtype=np.int32)
        top_min, top_max = np.full(n, np.nan, dtype=np.float32), np.full(n, np.nan, dtype=np.float32)
        intake = np.array(batch["intake"], dtype=object) if "intake" in batch else np.full(n, "", dtype=object)
        if ok.any():
            counts = np.asarray(batch["tiles"])[ok] if "tiles" in batch else None
            found = self.tile_decisions(np.asarray(batch["image"])[ok], counts)
            probabilities[ok] = found.probabilities
            rows = np.flatnonzero(ok)
            tiles[rows], agreeing[rows] = found.tiles, found.agreeing
            top_min[rows], top_max[rows] = found.top_min, found.top_max
            # Named even when the source is "unknown": a new instance of a known architecture still shows it.
            archs = self.attributor.architectures_of(found.codes)  # the evaluation's rule (kept for unknown rows)
            if archs is not None:
                architecture[rows] = archs
            for i, decision in zip(rows, found.decisions):
                predicted[i], family[i], unknown[i] = decision.label, decision.family or "", not decision.known
                confidence[i] = decision.confidence
                # A named source's row names that source's architecture, so one row never contradicts itself;
                # the head's own reading stays for unknown rows (an unknown source of a known architecture).
                if decision.known and decision.label in self._class_architecture:
                    architecture[i] = self._class_architecture[decision.label]
        out.update(
            predicted=predicted,
            source_family=family,
            architecture=architecture,
            unknown=unknown,
            confidence=confidence,
            probabilities=probabilities,
            model_version=np.full(n, self.model_version, dtype=object),
            reference_id=np.full(n, self.reference_id, dtype=object),
            intake=intake,
            tiles=tiles,
            tiles_agreeing=agreeing,
            tile_top_min=top_min,
            tile_top_max=top_max,
        )
        return out

    def attribute_images(
        self, images: np.ndarray, tiles: Sequence[int] | None = None, intake: Sequence[str] | None = None
    ) -> list[dict[str, Any]]:
        """Decisions for canonical images already in memory (uint8 ``[N, S, S, 3]``, e.g. one upload with
        ``N = 1``; or tiles ``[N, T, S, S, 3]``, the first ``tiles[i]`` of them image ``i``'s, read as
        ``intake[i]``): one dict per image with :data:`RESULT_COLUMNS`, ``probabilities`` as ``{class: p}``."""
        images = np.asarray(images)
        size = self.image_size
        if images.dtype != np.uint8 or images.ndim not in (4, 5) or images.shape[-3:] != (size, size, 3):
            raise ValueError(
                f"expected uint8 images [N, {size}, {size}, 3] or tiles [N, T, {size}, {size}, 3], got "
                f"{images.dtype} {list(images.shape)}"
            )
        batch: dict[str, np.ndarray] = {"ok": np.ones(len(images), dtype=bool), "image": images}
        if tiles is not None:
            batch["tiles"] = np.asarray(tiles, dtype=np.int32)
        if intake is not None:
            batch["intake"] = np.array(list(intake), dtype=object)
        return result_rows(self(batch), self.class_names)


def _tiles(images: np.ndarray, tiles: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Images or padded tiles (see :meth:`ImageAttributor.tile_decisions`) -> every tile ``[M, S, S, 3]`` in image
    order, and the tiles per image ``[N]``."""
    if images.ndim == 4:
        if tiles is not None and (np.asarray(tiles) != 1).any():
            raise ValueError("images [N, S, S, 3] are one tile each; tiles [N, T, S, S, 3] carry more")
        return images, np.ones(len(images), dtype=np.int64)
    slots = images.shape[1]
    counts = np.full(len(images), slots, dtype=np.int64) if tiles is None else np.asarray(tiles, dtype=np.int64)
    if counts.shape != (len(images),) or (counts < 1).any() or (counts > slots).any():
        raise ValueError(f"tile counts must be 1..{slots} per image, got {counts.tolist()[:8]}")
    return images[np.arange(slots)[None, :] < counts[:, None]], counts


def result_rows(columns: dict[str, np.ndarray], class_names: list[str]) -> list[dict[str, Any]]:
    """:data:`RESULT_COLUMNS` of a batch as one JSON-able dict per row (None where a row was not attributed)."""
    rows = []
    for i in range(len(columns["unknown"])):
        probs = columns["probabilities"][i]
        attributed = bool(columns["predicted"][i])
        rows.append(
            {
                "predicted": columns["predicted"][i] or None,
                "source_family": columns["source_family"][i] or None,
                "architecture": columns["architecture"][i] or None,
                "unknown": bool(columns["unknown"][i]) if attributed else None,
                "confidence": float(columns["confidence"][i]) if attributed else None,
                "probabilities": dict(zip(class_names, map(float, probs))) if attributed else None,
                "model_version": str(columns["model_version"][i]),
                "reference_id": str(columns["reference_id"][i]),
                "intake": str(columns["intake"][i]) or None,
                "tiles": int(columns["tiles"][i]) if attributed else None,
                "tiles_agreeing": int(columns["tiles_agreeing"][i]) if attributed else None,
                "tile_top_min": float(columns["tile_top_min"][i]) if attributed else None,
                "tile_top_max": float(columns["tile_top_max"][i]) if attributed else None,
            }
        )
    return rows
