"""A small Python client of the HTTP API, so that a user can call the service without writing HTTP."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx


class ServiceError(Exception):
    """The service refused a request: ``status``, ``kind`` and ``reason`` from its error body."""

    def __init__(self, status: int, kind: str, reason: str) -> None:
        super().__init__(f"{status} {kind}: {reason}")
        self.status, self.kind, self.reason = status, kind, reason


class CausalprintClient:
    """``CausalprintClient("http://127.0.0.1:8000", key=...)``; every method returns the parsed JSON answer or
    raises :class:`ServiceError` (4xx/5xx) or :class:`httpx.HTTPError` (no answer)."""

    def __init__(
        self, url: str, key: str | None = None, *, version: str | None = None, timeout_s: float = 60.0
    ) -> None:
        headers = {"X-API-Key": key} if key else {}
        if version:
            headers["X-Model-Version"] = version
        self._http = httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=timeout_s)

    def __enter__(self) -> CausalprintClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _answer(self, response: httpx.Response) -> Any:
        if response.is_success:
            return response.json()
        try:
            error = response.json()["error"]
            raise ServiceError(error["status"], error["kind"], error["reason"])
        except (ValueError, KeyError, TypeError):
            raise ServiceError(response.status_code, "http_error", response.text[:300]) from None

    def attribute(self, image: str | Path | bytes, *, explain: bool = False) -> dict[str, Any]:
        """Attribute one image: a local file, its bytes, or (``storage:<uri>``) an object in the service's
        storage."""
        params = {"explain": "true"} if explain else {}
        if isinstance(image, str) and image.startswith("storage:"):
            return self._answer(self._http.post("/v1/attribute", json={"uri": image[8:]}, params=params))
        name, data = _read(image)
        return self._answer(self._http.post("/v1/attribute", files={"file": (name, data)}, params=params))

    def attribute_batch(self, images: list[str | Path | bytes]) -> dict[str, Any]:
        files = [("files", _read(image)) for image in images]
        return self._answer(self._http.post("/v1/attribute/batch", files=files))

    def verify(self, image: str | Path | bytes, source: str, threshold: float | None = None) -> dict[str, Any]:
        name, data = _read(image)
        fields = {"source": source, **({"threshold": str(threshold)} if threshold is not None else {})}
        return self._answer(self._http.post("/v1/verify", files={"file": (name, data)}, data=fields))

    def models(self) -> dict[str, Any]:
        return self._answer(self._http.get("/v1/models"))

    def sources(self) -> dict[str, Any]:
        return self._answer(self._http.get("/v1/sources"))

    def enrol(self, source: str, images: str, family: str, alias: str | None = None) -> dict[str, Any]:
        body = {"images": images, "family": family, **({"alias": alias} if alias else {})}
        return self._answer(self._http.post(f"/v1/sources/{source}/enrol", json=body, timeout=None))

    def ready(self) -> bool:
        return self._http.get("/readyz").status_code == 200


def _read(image: str | Path | bytes) -> tuple[str, bytes]:
    if isinstance(image, bytes):
        return "upload", image
    path = Path(image)
    return path.name, path.read_bytes()
