"""The HTTP API's request and response models (``/v1``). Every error body is :class:`ErrorBody`."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Schema(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorDetail(Schema):
    status: int = Field(description="the HTTP status, repeated")
    kind: str = Field(
        description="machine-readable: unauthorized, forbidden, rate_limited, too_large, "
        "unsupported_format, truncated, corrupt, invalid_request, outside_storage, ..."
    )
    reason: str = Field(description="what was wrong, for a person")


class ErrorBody(Schema):
    error: ErrorDetail


class ModelName(Schema):
    name: str
    version: str
    uri: str = Field(description="models:/<name>/<version>")


class ImageInfo(Schema):
    format: str | None = Field(description="the format named by the file's own signature")
    bytes: int
    width: int = Field(description="the decoded image's width, upright")
    height: int
    intake: str = Field(description="how the image was brought to the model's size, for a person")
    intake_mode: Literal["tiles", "native", "resize"] = Field(
        description="tiles: native-resolution tiles of a larger image (serve.intake.mode: tiles); native: "
        "exactly the model's size, read as it is; resize: the centre square resized (a smaller image, or "
        "serve.intake.mode: resize)"
    )
    tiles: list[list[int]] = Field(description="each tile's top-left [x, y] in the image; [] when resized")


class TileSpread(Schema):
    """How an image's tiles agree (one tile: trivially)."""

    count: int = Field(ge=1, description="tiles the decision was made from")
    agreeing: int = Field(ge=0, description="tiles whose own decision is the image's")
    top_probability_min: float = Field(description="the lowest of the tiles' top calibrated probability")
    top_probability_max: float = Field(description="the highest of the tiles' top calibrated probability")


class Attribution(Schema):
    """The decision for one image: the same columns a scan's report row holds."""

    source: str = Field(description="a known source, '<family> (exact model unknown)', or 'unknown'")
    family: str | None
    architecture: str | None = Field(description="the most likely architecture (named even when the source is unknown)")
    unknown: bool = Field(description="true when no known source takes the image")
    confidence: float = Field(ge=0, le=1)
    probabilities: dict[str, float] = Field(
        description="calibrated probability of every source the model knows; for tiles, of the tiles' mean "
        "class scores (the mean of their log-probabilities, renormalised)"
    )
    tiles: TileSpread
    model: ModelName
    reference_id: str
    image: ImageInfo
    residual_png: str | None = Field(
        default=None, description="with explain=true: the reconstruction residual's magnitude as a base64 greyscale PNG"
    )
    elapsed_ms: float = Field(description="time in the service for this request")


class StorageObject(Schema):
    uri: str = Field(min_length=1, max_length=2048, description="an object inside the configured storage")


class BatchStorageObjects(Schema):
    uris: list[str] = Field(min_length=1, description="objects inside the configured storage")


class VerifyClaim(Schema):
    source: str = Field(min_length=1, max_length=128, description="the source the image is claimed to come from")
    threshold: float = Field(
        gt=0,
        lt=1,
        description="operating point: the probability at or above which the "
        "answer is yes (default: the service's verify_threshold)",
    )


class VerifyObject(Schema):
    uri: str = Field(min_length=1, max_length=2048, description="an object inside the configured storage")
    source: str = Field(min_length=1, max_length=128)
    threshold: float | None = Field(default=None, gt=0, lt=1)


class BatchItem(Schema):
    index: int
    name: str = Field(description="the upload's file name or the object's URI")
    result: Attribution | None = None
    error: ErrorDetail | None = None


class BatchResponse(Schema):
    results: list[BatchItem]
    ok: int
    failed: int
    elapsed_ms: float


class Verification(Schema):
    """'Was this image made by source X?' for a copyright holder."""

    source: str
    probability: float = Field(ge=0, le=1, description="calibrated probability of the claimed source")
    threshold: float = Field(description="the operating point: the probability at or above which the answer is yes")
    match: bool = Field(description="probability >= threshold and the open-set decision does not refuse the image")
    decision: str = Field(description="the open-set decision for the image (as /v1/attribute)")
    strongest_other: str | None
    strongest_other_probability: float | None
    model: ModelName
    elapsed_ms: float


class SourceInfo(Schema):
    name: str
    family: str | None
    architecture: str | None
    enrolled: bool = Field(description="added by enrolment, not training")


class ServedModel(Schema):
    model: ModelName
    followed: str = Field(description="the configured model URI (an alias is followed as it moves)")
    reference_id: str
    image_size: int
    sources: list[SourceInfo]


class VersionInfo(Schema):
    version: str
    aliases: list[str]
    created: str
    description: str | None


class ModelsResponse(Schema):
    name: str
    serving: ServedModel
    versions: list[VersionInfo]


class SourcesResponse(Schema):
    model: ModelName
    sources: list[SourceInfo]


class EnrolRequest(Schema):
    images: str = Field(
        min_length=1,
        max_length=2048,
        description="folder or prefix of the source's images, inside the configured storage",
    )
    family: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    alias: str | None = Field(
        default=None, max_length=64, description="alias of the new version (default: candidate; champion is refused)"
    )


class EnrolResponse(Schema):
    source: str
    model: ModelName
    alias: str
    summary: dict[str, object] = Field(description="what causalprint enrol reports")


class Health(Schema):
    status: str
    model: ModelName | None = None
    detail: str | None = None


class Decision(Schema):
    predicted: str | None
    source_family: str | None
    unknown: bool | None
    confidence: float | None


class AnonymizationReport(Schema):
    target: str = Field(description="the counterfactual fingerprint: real, or away from the named source")
    removed: str | None = Field(description="the source the model named before (None: it named none)")
    succeeded: bool = Field(description="the removed source is no longer named")
    before: Decision
    after: Decision = Field(description="the decision on the returned PNG, through the scan's path")
    psnr: float | None = Field(description="dB against the canonical input; null when nothing changed")
    ssim: float
    max_change: int = Field(description="the largest change of a pixel, in uint8 levels")
    steps: int
    seconds: float


class AnonymizeResponse(Schema):
    png: str = Field(description="the anonymized image, base64 PNG at the model's size")
    report: AnonymizationReport
    model: ModelName
    image: ImageInfo
    elapsed_ms: float
