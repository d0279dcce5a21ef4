"""``POST /v1/sources/{name}/enrol``: what ``causalprint enrol`` does, into the version being served."""

from __future__ import annotations

from typing import Any

from causalprint.config import ConfigError
from causalprint.enrolment.config import EnrolJobConfig
from causalprint.enrolment.errors import EnrolmentError
from causalprint.enrolment.register import enrol_images
from causalprint.scan.errors import ScanError
from causalprint.serving.config import ServeJobConfig
from causalprint.serving.errors import ApiError
from causalprint.serving.model_server import Served
from causalprint.storage import StorageError


def enrol_over_http(job: ServeJobConfig, served: Served, source: str, request: dict[str, Any]) -> dict[str, Any]:
    """Enrol ``source`` from ``request["images"]`` into ``served`` (the exact version answering now); the new
    version gets ``request["alias"]`` (default: candidate) and is served only once the gate promotes it."""
    from pydantic import ValidationError

    try:
        enrol = EnrolJobConfig.model_validate(
            {
                "storage": job.storage.model_dump(),
                "mlflow": job.mlflow.model_dump(),
                "enrol": {
                    "source": source,
                    "family": request["family"],
                    "images": request["images"],
                    "model": served.uri,
                    "reference": job.serve.reference,
                    **({"alias": request["alias"]} if request.get("alias") else {}),
                },
            }
        )
    except ValidationError as exc:
        raise ApiError(422, "invalid_request", "; ".join(e["msg"] for e in exc.errors())) from None
    try:
        summary = enrol_images(enrol)
    except StorageError as exc:
        raise ApiError(400, "outside_storage", str(exc)) from None
    except (EnrolmentError, ScanError, ConfigError) as exc:
        raise ApiError(409 if "already" in str(exc) else 400, "enrolment_refused", str(exc)) from None
    name, _, version = summary["model"].removeprefix("models:/").rpartition("/")
    return {
        "source": source,
        "model": {"name": name, "version": version, "uri": summary["model"]},
        "alias": summary["alias"],
        "summary": summary,
    }
