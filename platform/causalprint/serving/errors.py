"""Refusals of the HTTP API: one exception with a status, a machine-readable kind and a reason, and the status
of each way an image can be refused."""

from __future__ import annotations

from causalprint.imaging.errors import ImageDecodeError, ImageErrorKind

# 415 when the bytes are not a format we take, 413 when they are too big to take, 400 when a taken format is broken.
IMAGE_STATUS = {
    ImageErrorKind.EMPTY: 400,
    ImageErrorKind.TRUNCATED: 400,
    ImageErrorKind.CORRUPT: 400,
    ImageErrorKind.READ_FAILED: 400,
    ImageErrorKind.TOO_LARGE_BYTES: 413,
    ImageErrorKind.TOO_MANY_PIXELS: 413,
    ImageErrorKind.NOT_AN_IMAGE: 415,
    ImageErrorKind.UNSUPPORTED_FORMAT: 415,
}
REASON_CHARS = 500  # echoed input never makes a long answer


class ApiError(Exception):
    """A request the API refuses: ``status`` (4xx, or 503/504 when the service cannot answer now)."""

    def __init__(self, status: int, kind: str, reason: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(reason)
        self.status, self.kind, self.headers = status, kind, headers or {}
        self.reason = reason if len(reason) <= REASON_CHARS else reason[: REASON_CHARS - 1] + "…"

    def __reduce__(self) -> tuple[type[ApiError], tuple[int, str, str, dict[str, str]]]:
        # Crosses from a model replica to the ingress: replay all four arguments, not args=(reason,).
        return (type(self), (self.status, self.kind, self.reason, self.headers))

    def body(self) -> dict[str, dict[str, object]]:
        return {"error": {"status": self.status, "kind": self.kind, "reason": self.reason}}

    @classmethod
    def from_image(cls, exc: ImageDecodeError, name: str) -> ApiError:
        return cls(IMAGE_STATUS.get(exc.kind, 400), str(exc.kind), f"{name}: {exc.reason}")
