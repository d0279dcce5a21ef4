"""The two Serve deployments: a thin FastAPI ingress and the model, which batches requests dynamically, follows
the registry alias and keeps a few other versions for the model-version header."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Any

import numpy as np
from ray import serve

from causalprint.serving.api import create_api
from causalprint.serving.config import KeyRecord, ServeJobConfig
from causalprint.serving.keys import KeyRing
from causalprint.serving.model_server import ModelServer, Served, UnknownVersion
from causalprint.storage import Storage

log = logging.getLogger(__name__)
MODEL_DEPLOYMENT, INGRESS_DEPLOYMENT = "Attributor", "Ingress"


@serve.deployment(name=MODEL_DEPLOYMENT)
class AttributorDeployment:
    """One model replica: a :class:`ModelServer`, a batch queue, and a thread that follows the alias."""

    def __init__(self, job: ServeJobConfig) -> None:
        import torch

        self.job = job
        torch.set_num_threads(self.job.serve.torch_threads)
        self.server = ModelServer(self.job)
        self._per_pass = self.job.serve.batching.max_batch_size  # images per model pass (reconfigure sets it)
        self._stop = threading.Event()
        threading.Thread(target=self._follow_alias, name="follow-alias", daemon=True).start()

    def _follow_alias(self) -> None:
        while not self._stop.wait(self.job.serve.refresh_s):
            try:
                self.server.refresh()
            except Exception:  # a registry hiccup must not stop the replica; the next poll tries again
                log.exception("could not refresh the served alias")

    def reconfigure(self, user_config: dict[str, Any]) -> None:
        """Live settings (``user_config``): the batch size and wait, e.g. for the load test's unbatched phase."""
        if "max_batch_size" in user_config:
            self._per_pass = int(user_config["max_batch_size"])
            # @serve.batch adds these setters to the method at run time; Ray types it as the plain coroutine.
            self._batch.set_max_batch_size(self._per_pass)  # type: ignore[attr-defined]
        if "batch_wait_timeout_s" in user_config:
            self._batch.set_batch_wait_timeout_s(  # type: ignore[attr-defined]  # as above
                float(user_config["batch_wait_timeout_s"])
            )

    async def set_batching(self, max_batch_size: int, batch_wait_timeout_s: float | None = None) -> str:
        """Change this replica's batching now (the load test's unbatched and batched runs); returns the replica's
        id, so a caller can check that the same replica served both."""
        self.reconfigure(
            {
                "max_batch_size": max_batch_size,
                **({"batch_wait_timeout_s": batch_wait_timeout_s} if batch_wait_timeout_s is not None else {}),
            }
        )
        return str(serve.get_replica_context().replica_id.unique_id)

    @serve.multiplexed(max_num_models_per_replica=3)
    async def _version(self, model_id: str) -> Served:
        return await asyncio.to_thread(self.server.version, model_id)

    async def _served(self, version: str | None) -> Served:
        if version is None or version == self.server.current.version:
            return self.server.current
        return await self._version(version)

    @serve.batch(max_batch_size=32, batch_wait_timeout_s=0.002)  # reconfigure sets the configured values
    async def _batch(self, requests: list[tuple[np.ndarray, str | None, list[bool], list[int]]]) -> list[Any]:
        """Requests (each one or more images, as tiles) -> rows. The images of all requests naming one version are
        run together, in model passes of at most ``max_batch_size`` images (each with its tiles): 1 means one pass
        per image (unbatched)."""
        results: list[Any] = [None] * len(requests)
        groups: dict[str | None, list[int]] = {}
        for i, (_, version, _, _) in enumerate(requests):
            groups.setdefault(version, []).append(i)
        per_pass = self._per_pass
        for version, members in groups.items():
            try:
                served = await self._served(version)
            except UnknownVersion as exc:
                for i in members:
                    results[i] = exc
                continue
            images = np.concatenate([requests[i][0] for i in members])
            explain = [flag for i in members for flag in requests[i][2]]
            tiles = [count for i in members for count in requests[i][3]]
            rows: list[dict[str, Any]] = []
            for at in range(0, len(images), per_pass):
                rows += await asyncio.to_thread(
                    self.server.attribute,
                    served,
                    images[at : at + per_pass],
                    explain[at : at + per_pass],
                    tiles[at : at + per_pass],
                )
            at = 0
            for i in members:
                n = len(requests[i][0])
                results[i], at = rows[at : at + n], at + n
        return results

    async def attribute(
        self, images: np.ndarray, version: str | None, explain: list[bool], tiles: list[int]
    ) -> list[dict[str, Any]]:
        result = await self._batch((images, version, explain, tiles))
        if isinstance(result, Exception):
            raise result
        return result

    async def anonymize(self, image: np.ndarray, version: str | None, target: str) -> dict[str, Any]:
        from causalprint.anonymization.config import AnonymizationError
        from causalprint.serving.errors import ApiError

        served = await self._served(version)
        try:
            return await asyncio.to_thread(self.server.anonymize, served, image, target)
        except AnonymizationError as exc:
            raise ApiError(422, "cannot_anonymize", str(exc)) from None

    async def describe(self, version: str | None) -> dict[str, Any]:
        return self.server.describe(await self._served(version))

    async def image_size(self, version: str | None) -> int:
        return (await self._served(version)).pipeline.image_size

    async def versions(self) -> list[dict[str, Any]]:
        return await asyncio.to_thread(self.server.versions)

    async def enrol(self, source: str, request: dict[str, Any]) -> dict[str, Any]:
        from causalprint.serving.enrol import enrol_over_http

        return await asyncio.to_thread(enrol_over_http, self.job, self.server.current, source, request)


class ServeBackend:
    """The ingress's :class:`~causalprint.serving.api.Backend`: calls on the model deployment's handle, routed by
    version so that a replica already holding it answers."""

    def __init__(self, handle: Any, size_ttl_s: float = 2.0) -> None:
        self.handle = handle
        self._size_ttl_s = size_ttl_s
        self._sizes: dict[str | None, tuple[int, float]] = {}  # version -> (image size, when asked)

    def _to(self, version: str | None) -> Any:
        return self.handle.options(multiplexed_model_id=version) if version else self.handle

    async def attribute(
        self, images: np.ndarray, version: str | None, explain: list[bool], tiles: list[int]
    ) -> list[dict[str, Any]]:
        return await _unwrap(self._to(version).attribute.remote(images, version, explain, tiles))

    async def anonymize(self, image: np.ndarray, version: str | None, target: str) -> dict[str, Any]:
        return await _unwrap(self._to(version).anonymize.remote(image, version, target))

    async def describe(self, version: str | None) -> dict[str, Any]:
        return await _unwrap(self._to(version).describe.remote(version))

    async def image_size(self, version: str | None) -> int:
        """The model's input size, asked again after a few seconds (a new champion may take another size; a
        request decoded at a stale size is refused by the model's shape check and retried by the client)."""
        size, when = self._sizes.get(version, (0, 0.0))
        if time.monotonic() - when > self._size_ttl_s:
            size = await _unwrap(self._to(version).image_size.remote(version))
            self._sizes[version] = (size, time.monotonic())
        return size

    async def versions(self) -> list[dict[str, Any]]:
        return await _unwrap(self.handle.versions.remote())

    async def enrol(self, source: str, request: dict[str, Any]) -> dict[str, Any]:
        return await _unwrap(self.handle.enrol.remote(source, request))


async def _unwrap(response: Any) -> Any:
    """Await a handle call; an application error raised in the replica comes back as itself (Serve wraps it in
    a RayTaskError that is also an instance of the original type), so the ingress can map it to a status."""
    from causalprint.serving.errors import ApiError

    try:
        return await response
    except UnknownVersion as exc:
        raise ApiError(404, "unknown_version", str(exc).split("\n")[-1]) from None
    except ApiError as exc:
        raise ApiError(exc.status, exc.kind, exc.reason) from None


def ingress_deployment(job: ServeJobConfig, keys: tuple[KeyRecord, ...]) -> Any:
    """The ingress class for ``job``: the FastAPI app is built on each replica from the builder below (a Serve
    ingress builder runs where the replica starts, so nothing unpicklable crosses)."""

    def build_asgi() -> Any:
        handle = serve.get_deployment_handle(MODEL_DEPLOYMENT, app_name=serve.get_replica_context().app_name)
        return create_api(job.serve, ServeBackend(handle), Storage(job.storage), KeyRing(keys))

    @serve.deployment(name=INGRESS_DEPLOYMENT)
    @serve.ingress(build_asgi)
    class Ingress:
        """Thin: reads requests, checks keys and limits, decodes images, and forwards arrays to the model."""

        def __init__(self, model: Any) -> None:
            self.model = model  # bound so that Serve deploys the model with the app

    return Ingress
