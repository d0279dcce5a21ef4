"""The HTTP API in-process (FastAPI's test client over a ModelServer, no Ray Serve): decisions, the routes'
answers, keys, roles, rates, limits, and hostile uploads, each refused with a 4xx and a reason."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from image_samples import bomb_png, encode, header_only_png, noise, raw_png
from PIL import Image
from scan_world import TINY_MODEL, World
from serve_helpers import make_client

from causalprint.imaging.intake import IntakeConfig, decode_image
from causalprint.serving.config import AuthConfig, LimitsConfig
from causalprint.serving.model_server import ModelServer


def _png(image: np.ndarray) -> bytes:
    return encode(Image.fromarray(image), "PNG")


def _upload(client, data: bytes, name: str = "x.png", path: str = "/v1/attribute", **kwargs):
    return client.post(path, files={"file": (name, data, "application/octet-stream")}, **kwargs)


def _assert_refused(response, status: int, kind: str | None = None) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["status"] == status and error["reason"]
    if kind:
        assert error["kind"] == kind


# -- decisions ----------------------------------------------------------------------------------------------------
def test_an_upload_gets_the_pipelines_decision(client, model_server: ModelServer, serve_world: World) -> None:
    storage = serve_world.storage
    agreed = 0
    seen = []
    for uri in serve_world.good:
        data = storage.read_bytes(uri)
        response = _upload(client, data, Path(uri).name)
        assert response.status_code == 200, response.text
        body = response.json()
        image = decode_image(data, uri, IntakeConfig(size=model_server.current.pipeline.image_size))
        expected = model_server.current.pipeline.attribute_images(image[None])[0]
        assert (body["source"], body["family"], body["architecture"], body["unknown"]) == (
            expected["predicted"],
            expected["source_family"],
            expected["architecture"],
            expected["unknown"],
        )
        assert body["probabilities"] == pytest.approx(expected["probabilities"], abs=1e-6)
        assert body["model"] == {"name": TINY_MODEL, "version": "1", "uri": f"models:/{TINY_MODEL}/1"}
        assert body["image"]["format"] == "PNG" and body["image"]["intake_mode"] == "native"  # 16 px: as it is
        assert body["tiles"]["count"] == 1 and "16x16" in body["image"]["intake"]
        assert sum(body["probabilities"].values()) == pytest.approx(1, abs=1e-4)
        if not body["unknown"]:  # a named source names its own architecture (here each source is one)
            assert body["architecture"] == body["source"]
        agreed += 1
        seen.append((uri, body["source"]))
    # Three textures that a residual tells apart at a glance: the model must name most of them.
    # The decisions differ across images (so agreement is not a constant); this world's small model is not
    # accurate (the scan tests compare decisions, not truth), so no accuracy bound here.
    assert agreed == len(serve_world.good) and len({s for _, s in seen}) > 1


def test_a_storage_object_is_attributed_and_paths_outside_are_refused(client, serve_world: World) -> None:
    uri = serve_world.good[0]
    by_object = client.post("/v1/attribute", json={"uri": serve_world.storage.relative(uri)})
    by_upload = _upload(client, serve_world.storage.read_bytes(uri))
    assert by_object.status_code == 200, by_object.text
    assert by_object.json()["probabilities"] == by_upload.json()["probabilities"]
    for outside in ("../../etc/passwd", "/etc/passwd", "s3://other-bucket/x.png", "file:///etc/passwd"):
        _assert_refused(client.post("/v1/attribute", json={"uri": outside}), 400, "outside_storage")
    _assert_refused(client.post("/v1/attribute", json={"uri": "inbox/none.png"}), 404, "no_such_object")
    _assert_refused(client.post("/v1/attribute", json={"url": "x"}), 422)
    _assert_refused(
        client.post("/v1/attribute", content=b"{not json", headers={"content-type": "application/json"}),
        400,
        "invalid_json",
    )
    _assert_refused(client.post("/v1/attribute", content=b"abc", headers={"content-type": "text/plain"}), 415)


def test_explain_adds_the_residual_heatmap(client, serve_world: World) -> None:
    body = _upload(client, serve_world.storage.read_bytes(serve_world.good[0]), params={"explain": "true"}).json()
    import base64

    heatmap = Image.open(io.BytesIO(base64.b64decode(body["residual_png"])))
    assert heatmap.mode == "L" and heatmap.size == (16, 16) and np.asarray(heatmap).max() == 255
    assert _upload(client, serve_world.storage.read_bytes(serve_world.good[0])).json()["residual_png"] is None


def test_a_batch_answers_each_image_and_one_bad_file_fails_alone(client, serve_world: World) -> None:
    storage = serve_world.storage
    files = [("files", (Path(u).name, storage.read_bytes(u), "image/png")) for u in serve_world.good[:3]]
    files.insert(1, ("files", ("bad.png", b"not an image at all", "image/png")))
    body = client.post("/v1/attribute/batch", files=files).json()
    assert (body["ok"], body["failed"]) == (3, 1)
    assert [r["index"] for r in body["results"]] == [0, 1, 2, 3]
    assert body["results"][1]["error"]["kind"] == "not_an_image" and body["results"][1]["result"] is None
    single = _upload(client, storage.read_bytes(serve_world.good[0])).json()
    # One model pass for the request's three images: equal to the single pass to float precision (kernels sum in
    # an order that depends on the batch size).
    assert body["results"][0]["result"]["probabilities"] == pytest.approx(single["probabilities"], abs=1e-4)
    by_uri = client.post(
        "/v1/attribute/batch", json={"uris": [storage.relative(serve_world.good[0]), "../outside.png"]}
    ).json()
    assert by_uri["ok"] == 1 and by_uri["results"][1]["error"]["kind"] == "outside_storage"


def test_a_batch_over_the_limit_is_refused(model_server: ModelServer, serve_world: World) -> None:
    data = serve_world.storage.read_bytes(serve_world.good[0])
    with make_client(model_server, limits=LimitsConfig(max_batch_images=2)) as small:
        _assert_refused(
            small.post("/v1/attribute/batch", files=[("files", (f"{i}.png", data, "image/png")) for i in range(3)]),
            413,
            "too_many_images",
        )
        _assert_refused(small.post("/v1/attribute/batch", json={"uris": ["a", "b", "c"]}), 413, "too_many_images")


def test_verify_answers_the_claim_at_its_operating_point(client, serve_world: World) -> None:
    uri = serve_world.good[0]
    data = serve_world.storage.read_bytes(uri)
    attributed = _upload(client, data).json()
    probs = attributed["probabilities"]
    top = max(probs, key=probs.get)  # a source the model knows (the decision itself may be "unknown")
    yes = client.post("/v1/verify", files={"file": ("x.png", data)}, data={"source": top, "threshold": "0.3"}).json()
    assert yes["probability"] == pytest.approx(probs[top]) and yes["threshold"] == 0.3
    assert yes["match"] is (probs[top] >= 0.3 and not attributed["unknown"])
    other = min(probs, key=probs.get)
    no = client.post("/v1/verify", files={"file": ("x.png", data)}, data={"source": other}).json()
    assert no["match"] is False and no["threshold"] == 0.5 and no["strongest_other"] == top
    _assert_refused(
        client.post("/v1/verify", files={"file": ("x.png", data)}, data={"source": "midjourney"}), 404, "unknown_source"
    )
    _assert_refused(
        client.post("/v1/verify", files={"file": ("x.png", data)}, data={"source": top, "threshold": "2"}), 422
    )


def test_models_and_sources_describe_the_served_version(client) -> None:
    models = client.get("/v1/models").json()
    assert models["name"] == TINY_MODEL and models["serving"]["model"]["version"] == "1"
    versions = {v["version"]: v["aliases"] for v in models["versions"]}
    assert "champion" in versions["1"] and list(versions) == sorted(versions, key=int, reverse=True)
    sources = client.get("/v1/sources").json()["sources"]
    assert {s["name"]: s["family"] for s in sources} == {"blocky": "diffusion", "noisy": "diffusion", "smooth": "gan"}
    assert not any(s["enrolled"] for s in sources)


def test_an_unregistered_version_header_is_a_404(client, serve_world: World) -> None:
    data = serve_world.storage.read_bytes(serve_world.good[0])
    _assert_refused(_upload(client, data, headers={"X-Model-Version": "99"}), 404, "unknown_version")
    _assert_refused(_upload(client, data, headers={"X-Model-Version": "latest"}), 400, "invalid_version")
    assert _upload(client, data, headers={"X-Model-Version": "1"}).json()["model"]["version"] == "1"


def test_health_and_readiness(client) -> None:
    assert client.get("/healthz").json() == {"status": "alive", "model": None, "detail": None}
    ready = client.get("/readyz").json()
    assert ready["status"] == "ready" and ready["model"]["name"] == TINY_MODEL


def test_readiness_fails_until_a_model_is_there(model_server: ModelServer) -> None:
    from fastapi.testclient import TestClient

    from causalprint.serving.api import create_api
    from causalprint.serving.keys import KeyRing

    app = create_api(model_server.job.serve, None, model_server.storage, KeyRing([]))
    with TestClient(app) as bare:
        assert bare.get("/healthz").status_code == 200
        _assert_refused(bare.get("/readyz"), 503, "not_ready")


# -- keys, roles, rates ---------------------------------------------------------------------------------------------
def test_keys_are_required_when_configured(keyed, api_keys: dict, serve_world: World) -> None:
    data = serve_world.storage.read_bytes(serve_world.good[0])
    _assert_refused(_upload(keyed, data), 401, "unauthorized")
    _assert_refused(_upload(keyed, data, headers={"X-API-Key": api_keys["user"][0] + "x"}), 401)
    assert _upload(keyed, data, headers={"X-API-Key": api_keys["user"][0]}).status_code == 200
    assert _upload(keyed, data, headers={"Authorization": f"Bearer {api_keys['admin'][0]}"}).status_code == 200
    assert keyed.get("/healthz").status_code == 200 and keyed.get("/").status_code == 200


def test_enrolment_needs_an_admin_key(keyed, api_keys: dict) -> None:
    body = {"images": "images/noisy/train", "family": "diffusion"}
    _assert_refused(keyed.post("/v1/sources/new-gan/enrol", json=body), 401)
    _assert_refused(
        keyed.post("/v1/sources/new-gan/enrol", json=body, headers={"X-API-Key": api_keys["user"][0]}), 403, "forbidden"
    )
    admin = {"X-API-Key": api_keys["admin"][0]}
    _assert_refused(
        keyed.post("/v1/sources/new-gan/enrol", json={**body, "images": "../../etc"}, headers=admin),
        400,
        "outside_storage",
    )
    _assert_refused(keyed.post("/v1/sources/smooth/enrol", json=body, headers=admin), 400, "enrolment_refused")
    _assert_refused(keyed.post("/v1/sources/Bad%20Name/enrol", json=body, headers=admin), 400, "enrolment_refused")


def test_an_admin_enrols_a_new_source_as_a_candidate_version(keyed, api_keys: dict) -> None:
    admin = {"X-API-Key": api_keys["admin"][0]}
    response = keyed.post(
        "/v1/sources/blocky-v2/enrol", json={"images": "images/blocky/train", "family": "diffusion"}, headers=admin
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["source"] == "blocky-v2" and body["alias"] == "candidate"
    assert body["summary"]["read"] == 12 and body["summary"]["enrolled_from"] == f"models:/{TINY_MODEL}/1"
    versions = {v["version"]: v["aliases"] for v in keyed.get("/v1/models", headers=admin).json()["versions"]}
    assert versions[body["model"]["version"]] == ["candidate"] and "champion" in versions["1"]
    # The champion still serves; the new version answers when asked by number, and knows the new source.
    enrolled = keyed.get("/v1/sources", headers={**admin, "X-Model-Version": body["model"]["version"]}).json()
    assert {s["name"]: s["enrolled"] for s in enrolled["sources"]}["blocky-v2"] is True
    assert "blocky-v2" not in {s["name"] for s in keyed.get("/v1/sources", headers=admin).json()["sources"]}


def test_a_key_past_its_rate_gets_429(model_server: ModelServer, api_keys: dict) -> None:
    with make_client(model_server, api_keys, auth=AuthConfig(requests_per_minute=60, burst=2)) as limited:
        user = {"X-API-Key": api_keys["user"][0]}
        codes = [limited.get("/v1/sources", headers=user).status_code for _ in range(3)]
        assert codes == [200, 200, 429]
        refused = limited.get("/v1/sources", headers=user)
        assert int(refused.headers["retry-after"]) >= 1
        assert limited.get("/v1/sources", headers={"X-API-Key": api_keys["admin"][0]}).status_code == 200


def test_no_keys_off_loopback_is_refused(model_server: ModelServer) -> None:
    from causalprint.config import ConfigError
    from causalprint.serving.app import bind

    job = model_server.job.model_copy(update={"serve": model_server.job.serve.model_copy(update={"host": "0.0.0.0"})})
    with pytest.raises(ConfigError, match="without keys the service binds to 127.0.0.1 only"):
        bind(job)


# -- limits and hostile uploads -------------------------------------------------------------------------------------
def test_the_body_limit_is_enforced_before_and_while_reading(model_server: ModelServer) -> None:
    limits = LimitsConfig(max_body_bytes=64 * 1024, max_image_bytes=32 * 1024)
    with make_client(model_server, limits=limits) as small:
        _assert_refused(_upload(small, bytes(100 * 1024)), 413, "too_large")

        def chunks():  # no content-length: the cap applies as the body streams
            for _ in range(100):
                yield bytes(1024)

        _assert_refused(
            small.post("/v1/attribute", content=chunks(), headers={"content-type": "multipart/form-data; boundary=x"}),
            413,
            "too_large",
        )
        _assert_refused(_upload(small, b"\x89PNG\r\n\x1a\n" + bytes(40 * 1024)), 413, "too_large_bytes")


def _animated_gif() -> bytes:
    frames = [Image.fromarray(noise(16, 16, s)) for s in range(3)]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:])
    return buffer.getvalue()


def _animated_png() -> bytes:
    frames = [Image.fromarray(noise(16, 16, s)) for s in range(3)]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="PNG", save_all=True, append_images=frames[1:])
    return buffer.getvalue()


def _hostile() -> dict[str, tuple[bytes, int, str | None]]:
    """name -> (bytes, expected status, expected kind); 200 where the file is a valid image."""
    png = _png(noise(16, 16))
    sixteen = raw_png(16, 16, [np.arange(48, dtype=">u2").tobytes() * 1 for _ in range(16)], color_type=2, bit_depth=16)
    cmyk = encode(Image.fromarray(noise(16, 16)).convert("CMYK"), "JPEG")
    return {
        "zero-byte.png": (b"", 400, "empty"),
        "truncated.png": (png[: len(png) // 2], 400, "truncated"),
        "bomb.png": (bomb_png(), 413, "too_many_pixels"),
        "huge-declared.png": (header_only_png(100_000, 100_000), 413, "too_many_pixels"),
        "wrong-type.png": (b"%PDF-1.7\n" + bytes(200), 415, "not_an_image"),
        "script.jpg": (b"<script>alert(1)</script>", 415, "not_an_image"),
        "animated.gif": (_animated_gif(), 415, "unsupported_format"),
        "gif-polyglot.png": (b"GIF89a/*" + bytes(64) + b"*/=alert(1)", 415, "unsupported_format"),
        "png-zip-polyglot.png": (png + b"PK\x03\x04" + bytes(64), 200, None),  # a valid PNG with a tail
        "sixteen-bit.png": (sixteen, 200, None),
        "cmyk.jpg": (cmyk, 200, None),
        "animated.png": (_animated_png(), 200, None),  # APNG: its first frame
        "name-lies.gif": (png, 200, None),  # the bytes decide, not the name
    }


@pytest.mark.parametrize("name", sorted(_hostile()))
def test_hostile_uploads_get_a_4xx_with_a_reason_or_a_correct_answer(client, name: str) -> None:
    data, status, kind = _hostile()[name]
    response = client.post("/v1/attribute", files={"file": (name, data, "image/png")})
    if status == 200:
        assert response.status_code == 200, response.text
        assert response.json()["source"]
    else:
        _assert_refused(response, status, kind)
    assert client.get("/healthz").status_code == 200  # still serving


def test_the_page_and_its_script_are_served_with_a_strict_policy(client) -> None:
    page = client.get("/")
    assert page.status_code == 200 and 'id="drop"' in page.text and "/static/app.js" in page.text
    assert "script-src" not in page.headers["content-security-policy"]  # default-src 'self': no inline script
    assert "<script>" not in page.text.replace('<script src="/static/app.js"></script>', "")
    assert '"/v1/attribute?explain=true"' in client.get("/static/app.js").text


def test_the_openapi_schema_lists_every_route(client) -> None:
    spec = client.get("/openapi.json").json()
    assert {
        "/v1/attribute",
        "/v1/attribute/batch",
        "/v1/verify",
        "/v1/models",
        "/v1/sources",
        "/v1/sources/{name}/enrol",
        "/healthz",
        "/readyz",
    } <= set(spec["paths"])
    body = spec["paths"]["/v1/attribute"]["post"]["requestBody"]["content"]
    assert set(body) == {"multipart/form-data", "application/json"}
    assert json.dumps(spec).count("#/components/schemas/StorageObject") >= 1


def test_anonymize_returns_a_png_and_its_report(client, serve_world: World) -> None:
    import base64

    data = serve_world.storage.read_bytes(serve_world.good[0])
    _assert_refused(_upload(client, data, path="/v1/anonymize"), 422, "cannot_anonymize")  # no real class here
    response = _upload(client, data, path="/v1/anonymize", params={"target": "away"})
    assert response.status_code == 200, response.text
    body = response.json()
    image = Image.open(io.BytesIO(base64.b64decode(body["png"])))
    assert image.format == "PNG" and image.size == (16, 16)
    report = body["report"]
    assert report["max_change"] <= 4 and report["before"]["predicted"] == _upload(client, data).json()["source"]
    again = _upload(client, base64.b64decode(body["png"]), "anon.png").json()
    assert again["source"] == report["after"]["predicted"]  # the report scores the PNG it returns
    _assert_refused(_upload(client, b"nope", path="/v1/anonymize", params={"target": "away"}), 415)
    _assert_refused(_upload(client, data, path="/v1/anonymize", params={"target": "smooth"}), 422)  # no forgery


def test_a_link_out_of_storage_or_a_fifo_is_never_read(client, serve_world: World) -> None:
    import os

    root = Path(serve_world.storage.root)
    (root / "links").mkdir(exist_ok=True)
    link, fifo = root / "links" / "passwd.png", root / "links" / "pipe.png"
    if not link.exists():
        link.symlink_to("/etc/passwd")
    if not fifo.exists():
        os.mkfifo(fifo)
    _assert_refused(client.post("/v1/attribute", json={"uri": "links/passwd.png"}), 400, "outside_storage")
    refused = client.post("/v1/attribute", json={"uri": "links/pipe.png"})  # would block forever if opened
    assert refused.status_code == 400 and "not a regular file" in refused.json()["error"]["reason"]
