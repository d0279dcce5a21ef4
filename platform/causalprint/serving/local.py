"""A :class:`~causalprint.serving.api.Backend` over a :class:`ModelServer` in this process: the API without Ray
(tests, and a quick look at the app under any ASGI server)."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np

from causalprint.serving.errors import ApiError
from causalprint.serving.model_server import ModelServer, UnknownVersion


class LocalBackend:
    """Answers each request on its own (no batching): one model pass at a time, off the event loop."""

    def __init__(self, server: ModelServer) -> None:
        self.server = server
        self._lock = asyncio.Lock()

    def _served(self, version: str | None) -> Any:
        try:
            return self.server.version(version) if version else self.server.current
        except UnknownVersion as exc:
            raise ApiError(404, "unknown_version", str(exc)) from None

    async def attribute(
        self, images: np.ndarray, version: str | None, explain: list[bool], tiles: list[int]
    ) -> list[dict[str, Any]]:
        served = self._served(version)
        async with self._lock:
            return await asyncio.to_thread(self.server.attribute, served, images, explain, tiles)

    async def anonymize(self, image: np.ndarray, version: str | None, target: str) -> dict[str, Any]:
        served = self._served(version)
        async with self._lock:
            return await asyncio.to_thread(self.server.anonymize, served, image, target)

    async def describe(self, version: str | None) -> dict[str, Any]:
        return self.server.describe(self._served(version))

    async def image_size(self, version: str | None) -> int:
        return self._served(version).pipeline.image_size

    async def versions(self) -> list[dict[str, Any]]:
        return await asyncio.to_thread(self.server.versions)

    async def enrol(self, source: str, request: dict[str, Any]) -> dict[str, Any]:
        from causalprint.serving.enrol import enrol_over_http

        return await asyncio.to_thread(enrol_over_http, self.server.job, self.server.current, source, request)
