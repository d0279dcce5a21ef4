"""The model side of the service, free of Ray: the scan's own attribution path, the alias it follows, and the
versions a request may name.

:class:`ModelServer` is what a Serve model replica holds, and what the tests call directly.
"""

from __future__ import annotations

import base64
import io
import logging
import os
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from causalprint.attribution.prototype_enrolment import enrolled_sources
from causalprint.scan.image_attributor import ImageAttributor as AttributionPipeline
from causalprint.serving.config import ServeJobConfig
from causalprint.storage import Storage
from causalprint.tracking.mlflow_setup import tracking_uri_for
from causalprint.tracking.versions import parse_model_uri, resolve_version

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Served:
    """One loaded version: its pipeline and names. Immutable, so a request holds a consistent one even while
    the alias moves."""

    pipeline: AttributionPipeline
    name: str
    version: str

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"

    def model_json(self) -> dict[str, str]:
        return {"name": self.name, "version": self.version, "uri": self.uri}


class UnknownVersion(LookupError):
    """A requested version is not registered (a 404 with the reason)."""


class ModelServer:
    """Loads the configured model (an alias is pinned now and re-read by :meth:`refresh`) and answers batches."""

    def __init__(self, job: ServeJobConfig) -> None:
        # A replica's output is the service's log: MLflow's download bars would add a screen per model load.
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        self.job = job
        self.storage = Storage(job.storage)
        self.tracking_uri = tracking_uri_for(job.mlflow, self.storage)
        try:
            self.name, version, self.alias = parse_model_uri(job.serve.model)
        except ValueError as exc:
            raise ValueError(f"serve.model: {exc}") from None
        self._lock = threading.Lock()
        self._versions: dict[str, Served] = {}
        self._paths: dict[str, Any] = {}  # version -> its differentiable path (anonymization)
        self.current = self._load(version or self._alias_version())

    # -- which version --------------------------------------------------------------------------------------
    def _alias_version(self) -> str:
        version, _ = resolve_version(self.name, alias=self.alias, tracking_uri=self.tracking_uri)
        return version

    def _load(self, version: str) -> Served:
        cfg = self.job.serve
        pipeline = AttributionPipeline(
            self.storage,
            f"models:/{self.name}/{version}",
            cfg.reference,
            tracking_uri=self.tracking_uri,
            precision=cfg.precision,
            decision=cfg.decision,
        )
        log.info("loaded %s version %s", self.name, version)
        return Served(pipeline, self.name, version)

    def refresh(self) -> bool:
        """Follow the alias: load the version it points at now, if another, and swap it in (requests in flight
        keep the version they started with). Returns whether it changed."""
        if self.alias is None:
            return False
        version = self._alias_version()
        if version == self.current.version:
            return False
        served = self.version(version)
        self.current = served  # one assignment: a request sees the old or the new version, never a mix
        log.info("alias %s of %s now serves version %s", self.alias, self.name, version)
        return True

    def version(self, version: str) -> Served:
        """A registered version by number (cached; the multiplexing layer bounds how many a replica keeps)."""
        if version == self.current.version:
            return self.current
        with self._lock:
            if version not in self._versions:
                if not version.isdigit():
                    raise UnknownVersion(f"model version must be a number, got {version[:40]!r}")
                try:
                    resolve_version(self.name, version=version, tracking_uri=self.tracking_uri)
                except Exception as exc:  # MlflowException: not registered
                    raise UnknownVersion(f"{self.name} has no version {version}") from exc
                self._versions[version] = self._load(version)
            return self._versions[version]

    def forget(self, version: str) -> None:
        self._versions.pop(version, None)

    # -- answers --------------------------------------------------------------------------------------------
    def attribute(
        self,
        served: Served,
        images: np.ndarray,
        explain: list[bool] | None = None,
        tiles: list[int] | None = None,
    ) -> list[dict[str, Any]]:
        """Decisions for uint8 images ``[N, S, S, 3]``, or tiles ``[N, T, S, S, 3]`` of which the first
        ``tiles[i]`` are image ``i``'s, with ``served``: the scan's row columns, plus a residual heatmap (base64
        PNG, of the first tile) where ``explain`` asks for one."""
        rows = served.pipeline.attribute_images(images, tiles)
        first = images[:, 0] if images.ndim == 5 else images
        maps = residual_maps(served.pipeline, first, explain) if explain and any(explain) else {}
        for i, row in enumerate(rows):
            row["model"] = served.model_json()
            row["residual_png"] = maps.get(i)
        return rows

    def anonymize(self, served: Served, image: np.ndarray, target: str) -> dict[str, Any]:
        """The counterfactual of one canonical image (``target``: real or away; forgery is the library's only)."""
        from causalprint.anonymization.config import AnonymizeOptions
        from causalprint.anonymization.method import anonymize
        from causalprint.anonymization.path import FingerprintPath

        with self._lock:
            path = self._paths.get(served.version)
            if path is None:
                path = self._paths[served.version] = FingerprintPath(served.pipeline)
        result = anonymize(served.pipeline, image, AnonymizeOptions(target=target), path=path)
        return {"png": base64.b64encode(result.png).decode(), "report": result.report(), "model": served.model_json()}

    def sources(self, served: Served) -> list[dict[str, Any]]:
        attributor = served.pipeline.attributor
        calibration = attributor.calibration
        assert attributor.model.config.class_names is not None  # training sets a model's class names
        archs = dict(zip(attributor.model.config.class_names, attributor.model.config.architectures or ()))
        enrolled = set(enrolled_sources(attributor))
        return [
            {
                "name": name,
                "family": calibration.families.get(name),
                "architecture": archs.get(name),
                "enrolled": name in enrolled,
            }
            for name in served.pipeline.class_names
        ]

    def describe(self, served: Served) -> dict[str, Any]:
        return {
            "model": served.model_json(),
            "followed": self.job.serve.model,
            "reference_id": served.pipeline.reference_id,
            "image_size": served.pipeline.image_size,
            "sources": self.sources(served),
        }

    def versions(self) -> list[dict[str, Any]]:
        """Every registered version of the served name, newest first, with its aliases."""
        import mlflow

        client = mlflow.MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)
        found = client.search_model_versions(f"name='{self.name}'")
        aliases: dict[str, list[str]] = {}  # the search leaves each version's aliases empty; the model has them
        for alias, version in client.get_registered_model(self.name).aliases.items():
            aliases.setdefault(str(version), []).append(alias)
        rows = [
            {
                "version": str(v.version),
                "aliases": sorted(aliases.get(str(v.version), [])),
                "created": _iso(v.creation_timestamp),
                "description": v.description or None,
            }
            for v in found
        ]
        return sorted(rows, key=lambda r: -int(r["version"]))


def _iso(millis: int | None) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp((millis or 0) / 1000, tz=UTC).isoformat(timespec="seconds")


def residual_maps(pipeline: AttributionPipeline, images: np.ndarray, explain: list[bool]) -> dict[int, str]:
    """Per asked image: the magnitude of its first residual mode (mean |r| over channels), scaled to its own
    99th percentile, as a base64 greyscale PNG at the model's size."""
    rows = [i for i, wanted in enumerate(explain) if wanted]
    batch = {"ok": np.ones(len(rows), dtype=bool), "image": images[rows]}
    out = pipeline.residuals(batch)
    mode = next(iter(pipeline.residuals.modes))
    magnitude = np.abs(out[f"residual.{mode}"]).mean(axis=1)  # [n, S, S]
    maps = {}
    for i, m in zip(rows, magnitude):
        scale = float(np.percentile(m, 99)) or 1.0
        buffer = io.BytesIO()
        Image.fromarray((np.clip(m / scale, 0, 1) * 255).astype(np.uint8), mode="L").save(buffer, format="PNG")
        maps[i] = base64.b64encode(buffer.getvalue()).decode()
    return maps
