"""The HTTP API (FastAPI): routes, keys, limits and the uniform error body. It asks a :class:`Backend` for
decisions, so the same app runs inside the Serve ingress and in-process in tests."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable
from importlib import resources
from typing import Any, Protocol, TypeVar

import numpy as np
from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from causalprint.anonymization.config import AnonymizationError
from causalprint.serving import schemas
from causalprint.serving.config import ServeOptions
from causalprint.serving.errors import ApiError
from causalprint.serving.keys import KeyRing
from causalprint.serving.limits import BodyLimit, BodyTooLarge
from causalprint.serving.ratelimit import RateLimiter
from causalprint.serving.uploads import Decoded, decode_upload, intake_for
from causalprint.storage import Storage, StorageError

log = logging.getLogger(__name__)
T = TypeVar("T")
VERSION_HEADER = "X-Model-Version"
_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": schemas.ErrorBody} for status in (400, 401, 403, 404, 409, 413, 415, 422, 429, 503, 504)
}


class Backend(Protocol):
    """Where decisions come from: the Serve model deployment, or a :class:`ModelServer` in-process."""

    async def attribute(
        self, images: np.ndarray, version: str | None, explain: list[bool], tiles: list[int]
    ) -> list[dict[str, Any]]:
        """Decisions for one request's images, uint8 tiles ``[N, T, S, S, 3]`` of which the first ``tiles[i]``
        are image ``i``'s, one row per image."""

    async def anonymize(self, image: np.ndarray, version: str | None, target: str) -> dict[str, Any]: ...
    async def describe(self, version: str | None) -> dict[str, Any]: ...
    async def versions(self) -> list[dict[str, Any]]: ...
    async def enrol(self, source: str, request: dict[str, Any]) -> dict[str, Any]: ...
    async def image_size(self, version: str | None) -> int: ...


class Caller:
    def __init__(self, id: str, role: str) -> None:
        self.id, self.role = id, role


def _multipart_or_json(json_schema: str, fields: dict[str, Any]) -> dict[str, Any]:
    """The OpenAPI request body of a route that takes an upload or a JSON body naming a storage object."""
    return {
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": fields,
                        "required": [k for k in fields if k in ("file", "files", "source")],
                    }
                },
                "application/json": {"schema": {"$ref": f"#/components/schemas/{json_schema}"}},
            },
        }
    }


_FILE = {"type": "string", "format": "binary"}


def create_api(options: ServeOptions, backend: Backend | None, storage: Storage, keys: KeyRing) -> FastAPI:
    """The app. ``backend`` may be set later (``app.state.backend``): a Serve ingress gets its handle once the
    replica starts."""
    limits = options.limits
    app = FastAPI(
        title="causalprint",
        version="1",
        summary="Which generative model made an image.",
        description="Attribution, verification and enrolment over the registered attributor. Every "
        "error body is {error: {status, kind, reason}}.",
    )
    app.state.backend = backend
    app.add_middleware(BodyLimit, max_bytes=limits.max_body_bytes)
    limiter = RateLimiter(options.auth.requests_per_minute, options.auth.burst)

    def _backend() -> Backend:
        if app.state.backend is None:
            raise ApiError(503, "not_ready", "the model is still loading")
        return app.state.backend

    async def timed(call: Awaitable[T]) -> T:
        try:
            return await asyncio.wait_for(call, limits.request_timeout_s)
        except TimeoutError:
            raise ApiError(
                504, "timeout", f"no answer within {limits.request_timeout_s} s (limits.request_timeout_s)"
            ) from None

    # -- who calls --------------------------------------------------------------------------------------------
    async def caller(request: Request) -> Caller:  # async: FastAPI runs a plain def in a thread pool
        if not keys:
            who = Caller(request.client.host if request.client else "local", "admin")
        else:
            presented = request.headers.get("x-api-key") or ""
            auth = request.headers.get("authorization", "")
            if auth.lower().startswith("bearer "):
                presented = auth[7:].strip()
            if not presented:
                raise ApiError(
                    401, "unauthorized", "an API key is required: send X-API-Key or Authorization: Bearer <key>"
                )
            found = keys.check(presented)
            if found is None:
                raise ApiError(401, "unauthorized", "the API key is not valid")
            who = Caller(*found)
        wait = limiter.allow(who.id)
        if wait:
            raise ApiError(
                429,
                "rate_limited",
                f"more than {options.auth.requests_per_minute:g} requests a minute for this key; retry in {wait:.1f} s",
                headers={"Retry-After": str(max(1, round(wait)))},
            )
        return who

    async def admin(who: Caller = Depends(caller)) -> Caller:
        if who.role != "admin":
            raise ApiError(403, "forbidden", "this endpoint needs an admin key")
        return who

    # -- error bodies -----------------------------------------------------------------------------------------
    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)

    @app.exception_handler(BodyTooLarge)
    async def _too_large(_: Request, exc: BodyTooLarge) -> JSONResponse:
        return JSONResponse(ApiError(413, "too_large", str(exc)).body(), status_code=413)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(ApiError(422, "invalid_request", _validation_reason(exc.errors())).body(), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "invalid_request")
        return JSONResponse(
            ApiError(exc.status_code, kind, str(exc.detail)).body(),
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    # -- reading a request's images ---------------------------------------------------------------------------
    async def json_object(request: Request) -> dict[str, Any]:
        try:
            body = json.loads(await request.body())
        except json.JSONDecodeError as exc:
            raise ApiError(400, "invalid_json", f"the body is not JSON: {exc.msg} at {exc.pos}") from None
        if not isinstance(body, dict):
            raise ApiError(422, "invalid_request", "the JSON body must be an object")
        return body

    async def read_object(uri: str) -> tuple[bytes, str]:
        try:
            full = storage.resolve(uri)
            size = await asyncio.to_thread(storage.size, full)
            if size > limits.max_image_bytes:
                raise ApiError(
                    413, "too_large_bytes", f"{full}: {size} bytes exceeds max_image_bytes {limits.max_image_bytes}"
                )
            return await asyncio.to_thread(storage.read_bytes, full), full
        except StorageError as exc:
            raise ApiError(400, "outside_storage", f"{uri}: {exc}") from None
        except (FileNotFoundError, IsADirectoryError):
            raise ApiError(404, "no_such_object", f"no object {uri!r} in storage") from None
        except OSError as exc:
            raise ApiError(400, "read_failed", f"{uri}: {type(exc).__name__}") from None

    def content_type(request: Request) -> str:
        return request.headers.get("content-type", "").split(";")[0].strip().lower()

    async def form_of(request: Request, max_files: int) -> Any:
        try:
            return await request.form(max_files=max_files, max_fields=16)
        except BodyTooLarge:
            raise
        except Exception as exc:  # malformed multipart: starlette raises several types
            raise ApiError(400, "invalid_multipart", f"the multipart body cannot be read: {exc}") from None

    async def decode(data: bytes, name: str, version: str | None, *, resize: bool = False) -> Decoded:
        """The upload as the model reads it (``options.intake``; ``resize``: one canonical image, for routes that
        answer with an image of the model's size)."""
        size = await timed(_backend().image_size(version))
        tiles = options.intake.model_copy(update={"mode": "resize"}) if resize else options.intake
        return await asyncio.to_thread(decode_upload, data, name, intake_for(size, limits, tiles))

    async def one_image(request: Request) -> tuple[bytes, str, dict[str, Any]]:
        """The image of a single-image route (an upload or a storage object) and the other fields."""
        kind = content_type(request)
        if kind == "multipart/form-data":
            form = await form_of(request, 1)
            upload = form.get("file")
            if upload is None or isinstance(upload, str):
                raise ApiError(422, "invalid_request", "multipart body needs a file field named 'file'")
            data = await upload.read()
            fields = {k: v for k, v in form.items() if isinstance(v, str)}
            return data, upload.filename or "upload", fields
        if kind == "application/json":
            body = await json_object(request)
            obj = _validated(schemas.StorageObject, {"uri": body.get("uri")})
            data, name = await read_object(obj.uri)
            return data, name, {k: v for k, v in body.items() if k != "uri"}
        raise ApiError(
            415,
            "unsupported_media_type",
            f"send multipart/form-data with a file field, or application/json naming a storage object; got {kind!r}",
        )

    def version_of(request: Request) -> str | None:
        version = request.headers.get(VERSION_HEADER.lower())
        if version is not None and not version.isdigit():
            raise ApiError(400, "invalid_version", f"{VERSION_HEADER} must be a version number, got {version[:40]!r}")
        return version

    async def attribute_one(data: bytes, name: str, version: str | None, explain: bool) -> dict[str, Any]:
        decoded = await decode(data, name, version)
        (row,) = await timed(_backend().attribute(decoded.padded[None], version, [explain], [decoded.count]))
        return {**_attribution(row), "image": decoded.info}

    # -- routes -----------------------------------------------------------------------------------------------
    @app.get("/", include_in_schema=False)
    async def index() -> HTMLResponse:
        return HTMLResponse(_web("index.html"), headers=_PAGE_HEADERS)

    @app.get("/static/app.js", include_in_schema=False)
    async def script() -> Response:
        return Response(_web("app.js"), media_type="text/javascript", headers=_PAGE_HEADERS)

    @app.get("/healthz", response_model=schemas.Health)
    async def healthz() -> dict[str, Any]:
        return {"status": "alive"}

    @app.get("/readyz", response_model=schemas.Health, responses={503: {"model": schemas.ErrorBody}})
    async def readyz() -> dict[str, Any]:
        try:
            served = await timed(_backend().describe(None))
        except ApiError:
            raise
        except Exception as exc:  # the model replica is not up: not ready, whatever the cause
            raise ApiError(503, "not_ready", f"the model is not loaded: {type(exc).__name__}: {exc}") from None
        return {"status": "ready", "model": served["model"]}

    @app.post(
        "/v1/attribute",
        response_model=schemas.Attribution,
        responses=_ERRORS,
        openapi_extra=_multipart_or_json("StorageObject", {"file": _FILE}),
    )
    async def attribute(
        request: Request,
        explain: bool = Query(False, description="add the residual heatmap"),
        _: Caller = Depends(caller),
    ) -> dict[str, Any]:
        start = time.perf_counter()
        version = version_of(request)
        data, name, _fields = await one_image(request)
        result = await attribute_one(data, name, version, explain)
        return {**result, "elapsed_ms": _ms(start)}

    @app.post(
        "/v1/attribute/batch",
        response_model=schemas.BatchResponse,
        responses=_ERRORS,
        openapi_extra=_multipart_or_json("BatchStorageObjects", {"files": {"type": "array", "items": _FILE}}),
    )
    async def attribute_batch(request: Request, _: Caller = Depends(caller)) -> dict[str, Any]:
        start = time.perf_counter()
        version = version_of(request)
        items: list[tuple[str, Awaitable[tuple[bytes, str]]]] = []
        kind = content_type(request)
        if kind == "multipart/form-data":
            form = await form_of(request, limits.max_batch_images + 1)
            uploads = [f for f in form.getlist("files") if not isinstance(f, str)]
            if not uploads:
                raise ApiError(422, "invalid_request", "multipart body needs one or more file fields named 'files'")
            _check_count(len(uploads), limits.max_batch_images)
            items = [(u.filename or f"upload-{i}", _read_upload(u)) for i, u in enumerate(uploads)]
        elif kind == "application/json":
            body = _validated(schemas.BatchStorageObjects, await json_object(request))
            _check_count(len(body.uris), limits.max_batch_images)
            items = [(uri, read_object(uri)) for uri in body.uris]
        else:
            raise ApiError(
                415,
                "unsupported_media_type",
                f"send multipart/form-data with 'files' fields, or application/json with 'uris'; got {kind!r}",
            )

        async def read_and_decode(index: int, name: str, reading: Awaitable[tuple[bytes, str]]) -> Any:
            try:
                data, full = await reading
                return index, full or name, await decode(data, full or name, version)
            except ApiError as exc:
                if exc.status >= 500:
                    raise
                return index, name, exc

        decoded = await asyncio.gather(*(read_and_decode(i, n, r) for i, (n, r) in enumerate(items)))
        good = [(i, name, d) for i, name, d in decoded if isinstance(d, Decoded)]
        # One call to the model for the whole request: its images share model passes (and other requests').
        rows = (
            await timed(
                _backend().attribute(
                    np.stack([d.padded for _, _, d in good]),
                    version,
                    [False] * len(good),
                    [d.count for _, _, d in good],
                )
            )
            if good
            else []
        )
        answers = {
            i: {"index": i, "name": name, "result": {**_attribution(row), "image": d.info, "elapsed_ms": _ms(start)}}
            for (i, name, d), row in zip(good, rows)
        }
        results = [answers.get(i) or {"index": i, "name": name, "error": d.body()["error"]} for i, name, d in decoded]
        failed = sum(1 for r in results if "error" in r)
        return {"results": results, "ok": len(results) - failed, "failed": failed, "elapsed_ms": _ms(start)}

    @app.post(
        "/v1/verify",
        response_model=schemas.Verification,
        responses=_ERRORS,
        openapi_extra=_multipart_or_json(
            "VerifyObject", {"file": _FILE, "source": {"type": "string"}, "threshold": {"type": "number"}}
        ),
    )
    async def verify(request: Request, _: Caller = Depends(caller)) -> dict[str, Any]:
        start = time.perf_counter()
        version = version_of(request)
        data, name, fields = await one_image(request)
        claim = _validated(
            schemas.VerifyClaim,
            {"source": fields.get("source"), "threshold": fields.get("threshold", options.verify_threshold)},
        )
        served = await timed(_backend().describe(version))
        known = [s["name"] for s in served["sources"]]
        if claim.source not in known:
            raise ApiError(
                404,
                "unknown_source",
                f"model {served['model']['uri']} knows no source {claim.source[:80]!r}; it knows {', '.join(known)}",
            )
        row = await attribute_one(data, name, version, False)
        return {**verdict(row, claim.source, claim.threshold), "elapsed_ms": _ms(start)}

    @app.post(
        "/v1/anonymize",
        response_model=schemas.AnonymizeResponse,
        responses=_ERRORS,
        openapi_extra=_multipart_or_json("StorageObject", {"file": _FILE}),
    )
    async def anonymize(
        request: Request,
        target: str = Query(
            "real",
            pattern="^(real|away)$",
            description="real: the real class's fingerprint; away: away from the named source",
        ),
        _: Caller = Depends(caller),
    ) -> dict[str, Any]:
        start = time.perf_counter()
        version = version_of(request)
        data, name, _fields = await one_image(request)
        decoded = await decode(data, name, version, resize=True)
        try:
            answer = await timed(_backend().anonymize(decoded.image, version, target))
        except AnonymizationError as exc:  # the in-process backend raises the method's own refusal
            raise ApiError(422, "cannot_anonymize", str(exc)) from None
        return {**answer, "image": decoded.info, "elapsed_ms": _ms(start)}

    @app.get("/v1/models", response_model=schemas.ModelsResponse, responses=_ERRORS)
    async def models(request: Request, _: Caller = Depends(caller)) -> dict[str, Any]:
        served = await timed(_backend().describe(version_of(request)))
        return {"name": served["model"]["name"], "serving": served, "versions": await timed(_backend().versions())}

    @app.get("/v1/sources", response_model=schemas.SourcesResponse, responses=_ERRORS)
    async def sources(request: Request, _: Caller = Depends(caller)) -> dict[str, Any]:
        served = await timed(_backend().describe(version_of(request)))
        return {"model": served["model"], "sources": served["sources"]}

    @app.post("/v1/sources/{name}/enrol", response_model=schemas.EnrolResponse, responses=_ERRORS)
    async def enrol(name: str, body: schemas.EnrolRequest, _: Caller = Depends(admin)) -> dict[str, Any]:
        try:  # the name itself is checked by enrolment's own rule (a 400 with its reason)
            storage.resolve(body.images)
        except StorageError as exc:
            raise ApiError(400, "outside_storage", f"{body.images}: {exc}") from None
        # Enrolment reads every image and registers a version: minutes, not the per-request limit.
        return await _backend().enrol(name, body.model_dump(exclude_none=True))

    _add_json_schemas(app)
    return app


# -- helpers ----------------------------------------------------------------------------------------------------
_PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'",
    "X-Content-Type-Options": "nosniff",
}


def _web(name: str) -> str:
    return (resources.files("causalprint.serving") / "web" / name).read_text()


def _ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 2)


def _check_count(n: int, limit: int) -> None:
    if n > limit:
        raise ApiError(413, "too_many_images", f"{n} images in one batch exceeds max_batch_images {limit}")


async def _read_upload(upload: Any) -> tuple[bytes, str]:
    return await upload.read(), upload.filename or "upload"


def _validated(model: type[T], data: dict[str, Any]) -> T:
    try:
        return model.model_validate(data)  # type: ignore[attr-defined]
    except ValidationError as exc:
        raise ApiError(422, "invalid_request", _validation_reason(exc.errors())) from None


def _validation_reason(errors: Any) -> str:
    parts = []
    for err in list(errors)[:5]:
        where = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
        parts.append(f"{where}: {err.get('msg')}")
    return "; ".join(parts)


def _attribution(row: dict[str, Any]) -> dict[str, Any]:
    """A pipeline row (the scan's columns) -> the API's :class:`~causalprint.serving.schemas.Attribution`."""
    return {
        "source": row["predicted"],
        "family": row["source_family"],
        "architecture": row["architecture"],
        "unknown": row["unknown"],
        "confidence": row["confidence"],
        "probabilities": row["probabilities"],
        "tiles": {
            "count": row["tiles"],
            "agreeing": row["tiles_agreeing"],
            "top_probability_min": row["tile_top_min"],
            "top_probability_max": row["tile_top_max"],
        },
        "model": row["model"],
        "reference_id": row["reference_id"],
        "residual_png": row.get("residual_png"),
    }


def verdict(result: dict[str, Any], source: str, threshold: float) -> dict[str, Any]:
    """Is ``source`` the maker? Its calibrated probability against ``threshold``; the open-set decision must
    not have refused the image (an unknown answer is never a match)."""
    probs = result["probabilities"]
    p = float(probs[source])
    others = {k: v for k, v in probs.items() if k != source}
    other = max(others, key=lambda k: others[k]) if others else None
    return {
        "source": source,
        "probability": p,
        "threshold": threshold,
        "match": bool(p >= threshold and not result["unknown"]),
        "decision": result["source"],
        "strongest_other": other,
        "strongest_other_probability": float(others[other]) if other else None,
        "model": result["model"],
    }


def _add_json_schemas(app: FastAPI) -> None:
    """Publish the JSON bodies that the routes read by hand (they also take multipart) in the OpenAPI schema."""
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        spec = original()
        components = spec.setdefault("components", {}).setdefault("schemas", {})
        for model in (schemas.StorageObject, schemas.BatchStorageObjects, schemas.VerifyObject):
            components[model.__name__] = model.model_json_schema(ref_template="#/components/schemas/{model}")
        app.openapi_schema = spec
        return spec

    app.openapi = openapi  # type: ignore[method-assign]
