"""Which attributor a scan uses: its MLflow URI pinned to one version, its files, and how to rebuild its inputs."""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from typing import Any

from causalprint.extraction.config import SpaceSpec
from causalprint.scan.errors import ScanError
from causalprint.tracking.artifacts import LoadedAttributor
from causalprint.tracking.versions import load_attributor, parse_model_uri, resolve_version

_RUNS = re.compile(r"^runs:/(?P<run>[0-9a-f]+)/.+$")


@dataclass(frozen=True)
class ModelRef:
    """A model URI that always means the same files: ``uri`` names a version (or a run), never a moving alias;
    ``slug`` names it in paths (``causalprint-attributor-v3``, ``run-0a1b2c3d4e5f``); ``artifacts`` is where its
    files are (the version's source in the artifact store, or the ``runs:/`` URI itself)."""

    uri: str
    slug: str
    artifacts: str


def resolve_model(uri: str, tracking_uri: str | None = None) -> ModelRef:
    """Pin ``uri``: an alias (``models:/name@champion``) becomes the version it points at now, so every actor of
    a scan loads the same model even if the alias moves during the scan."""
    if match := _RUNS.match(uri):
        return ModelRef(uri, f"run-{match['run'][:12]}", uri)
    try:
        name, version, alias = parse_model_uri(uri)
    except ValueError:
        raise ScanError(
            f"model {uri!r} is not an MLflow model URI; use models:/<name>@<alias>, "
            f"models:/<name>/<version> or runs:/<run id>/attributor"
        ) from None
    from mlflow.exceptions import MlflowException

    try:
        version, source = resolve_version(name, version=version, alias=alias, tracking_uri=tracking_uri)
    except MlflowException as exc:
        raise ScanError(f"model {uri!r} cannot be resolved in the registry {tracking_uri}: {exc.message}") from exc
    return ModelRef(f"models:/{name}/{version}", f"{name}-v{version}", source)


def fetch_attributor(
    model: ModelRef, tracking_uri: str | None = None, s3_endpoint: str | None = None
) -> LoadedAttributor:
    """Download and load the attributor ``model`` (JSON + safetensors only). ``s3_endpoint`` is where an S3
    artifact store lives when it is not AWS (the storage's endpoint, for artifacts kept beside the data)."""
    if s3_endpoint:
        # MLflow reads the endpoint from the environment only; an explicit setting wins over this default.
        os.environ.setdefault("MLFLOW_S3_ENDPOINT_URL", s3_endpoint)
    from mlflow.exceptions import MlflowException

    with tempfile.TemporaryDirectory() as tmp:
        try:
            return load_attributor(model.artifacts, dst=tmp, tracking_uri=tracking_uri)
        except MlflowException as exc:  # e.g. a runs:/ URI of a run that does not exist
            raise ScanError(f"model {model.uri} cannot be loaded from {tracking_uri}: {exc.message}") from exc


@dataclass(frozen=True)
class ExtractionSpec:
    """How the attributor's input vectors are made: residual ``modes`` (name -> options) of the reference
    ``reference_id`` at ``image_size``, embedded in ``spaces``, concatenated in the order of ``columns``."""

    reference_id: str
    image_size: int
    modes: dict[str, dict[str, Any]]
    spaces: list[SpaceSpec]
    columns: list[str]
    input_dim: int


def extraction_spec(attributor: LoadedAttributor, uri: str) -> ExtractionSpec:
    """The attributor's :class:`ExtractionSpec`, from its ``requirements.json``; a version registered before
    requirements recorded the extraction is refused with what to do."""
    req = attributor.requirements
    extraction = req.get("extraction")
    if not extraction:
        raise ScanError(
            f"attributor {uri} does not record how its features were extracted (its requirements hold "
            f"{sorted(req)}, no 'extraction'): register it again with this version of causalprint "
            f"(causalprint train) so that a scan can rebuild its input columns {req.get('columns')}"
        )
    columns = list(req["columns"])
    spec = ExtractionSpec(
        reference_id=str(req["reference_id"]),
        image_size=int(extraction["image_size"]),
        modes={k: dict(v) for k, v in extraction["modes"].items()},
        spaces=[SpaceSpec.model_validate(s) for s in extraction["spaces"]],
        columns=columns,
        input_dim=int(req.get("input_dim", 0)),
    )
    names = {s.name for s in spec.spaces}
    missing = [c for c in columns if c.partition(".")[0] not in spec.modes or c.partition(".")[2] not in names]
    if missing:
        raise ScanError(
            f"attributor {uri}: columns {missing} are not made by its recorded extraction "
            f"(modes {sorted(spec.modes)}, spaces {sorted(names)})"
        )
    return spec


def decision_classes(attributor: LoadedAttributor, decision: str) -> list[str]:
    """The classes of the probability columns: the classifier's (``logits``), or every prototype's
    (``prototypes``, enrolled sources included)."""
    calibration = attributor.calibration
    if decision == "logits":
        return list(calibration.class_names)
    return [str(label) for label in calibration.prototypes.labels_]


def check_reference(spec: ExtractionSpec, reference_id: str, reference_uri: str) -> None:
    """Refuse a reference model other than the one the attributor's features came from."""
    if reference_id != spec.reference_id:
        raise ScanError(
            f"reference model {reference_uri} is {reference_id}, but the attributor was trained on "
            f"residuals of {spec.reference_id}: set scan.reference to that model's folder"
        )
