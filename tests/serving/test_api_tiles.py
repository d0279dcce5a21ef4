"""The API reads an upload larger than the model's size as native-resolution tiles by default (the response says
how, with the tiles' spread) and resized when ``serve.intake.mode`` is resize; the decision is the scan's rule."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from scan_world import SIZE, World, write_mosaics
from serve_helpers import make_client

from causalprint.imaging.intake import IntakeConfig, decode_image
from causalprint.imaging.tiles import TileOptions
from causalprint.serving.model_server import ModelServer

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def mosaic(serve_world: World) -> tuple[bytes, np.ndarray]:
    uri, quarters = next(iter(write_mosaics(serve_world.storage, "api-mosaics", 1, seed=7).items()))
    return serve_world.storage.read_bytes(uri), quarters


def _attribute(client, data: bytes):
    return client.post("/v1/attribute", files={"file": ("m.png", data, "image/png")})


def test_a_larger_upload_is_read_as_tiles_by_default(
    client, model_server: ModelServer, mosaic: tuple[bytes, np.ndarray]
) -> None:
    data, quarters = mosaic
    response = _attribute(client, data)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["image"]["intake_mode"] == "tiles" and (body["image"]["width"], body["image"]["height"]) == (32, 32)
    assert body["image"]["tiles"] == [[0, 0], [SIZE, 0], [0, SIZE], [SIZE, SIZE]]
    spread = body["tiles"]
    assert spread["count"] == 4 and 0 <= spread["agreeing"] <= 4
    assert spread["top_probability_min"] <= spread["top_probability_max"]
    expected = model_server.current.pipeline.attribute_images(quarters[None], [4])[0]
    assert (body["source"], body["unknown"]) == (expected["predicted"], expected["unknown"])
    assert body["probabilities"] == pytest.approx(expected["probabilities"], abs=1e-6)
    assert spread["agreeing"] == expected["tiles_agreeing"]

    batch = client.post("/v1/attribute/batch", files=[("files", ("a.png", data, "image/png"))] * 2).json()
    assert [r["result"]["tiles"]["count"] for r in batch["results"]] == [4, 4]
    assert batch["results"][0]["result"]["source"] == body["source"]
    schema = client.get("/openapi.json").json()["components"]["schemas"]
    assert "intake_mode" in schema["ImageInfo"]["properties"] and "tiles" in schema["Attribution"]["properties"]


def test_resize_is_a_setting(model_server: ModelServer, mosaic: tuple[bytes, np.ndarray]) -> None:
    data, _ = mosaic
    with make_client(model_server, intake=TileOptions(mode="resize")) as client:
        body = _attribute(client, data).json()
    assert body["image"]["intake_mode"] == "resize" and body["image"]["tiles"] == []
    assert body["tiles"]["count"] == 1 and "resized to 16x16" in body["image"]["intake"]
    image = decode_image(data, "m.png", IntakeConfig(size=SIZE))
    expected = model_server.current.pipeline.attribute_images(image[None])[0]
    assert body["source"] == expected["predicted"]
    assert body["probabilities"] == pytest.approx(expected["probabilities"], abs=1e-6)


def test_a_strip_narrower_than_the_model_is_resized_and_bad_bytes_refused(client) -> None:
    buffer = io.BytesIO()
    Image.fromarray(np.full((8, 40, 3), 90, dtype=np.uint8)).save(buffer, format="PNG")
    body = _attribute(client, buffer.getvalue()).json()
    assert body["image"]["intake_mode"] == "resize" and body["tiles"]["count"] == 1
    refused = _attribute(client, b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    assert refused.status_code == 400 and refused.json()["error"]["reason"]
