"""The application on Ray Serve, over real HTTP: the scan's decisions, batching, a champion change under load,
and the version header."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
import mlflow
import numpy as np
import pytest

from causalprint.extraction.parts import load_features
from causalprint.scan.job import run_scan
from causalprint.scan.report import CLASS_NAMES_KEY
from scan_world import TINY_MODEL, World, register_model

pytestmark = pytest.mark.slow


def _post(url: str, data: bytes, name: str, **kwargs) -> httpx.Response:
    return httpx.post(f"{url}/v1/attribute", files={"file": (name, data, "image/png")}, timeout=60, **kwargs)


def test_decisions_over_http_equal_the_scans(served: str, serve_world: World) -> None:
    import json

    storage = serve_world.storage
    summary = run_scan(serve_world.job("scans/serve-check"))
    table = load_features(storage, summary["report"])
    class_names = json.loads(table.schema.metadata[CLASS_NAMES_KEY])
    rows = {r["uri"]: r for r in table.to_pylist()}
    for uri in serve_world.good:
        body = _post(served, storage.read_bytes(uri), Path(uri).name).json()
        row = rows[uri]
        assert (body["source"], body["family"], body["architecture"], body["unknown"]) == (
            row["predicted"], row["source_family"], row["architecture"], row["unknown"])
        assert body["model"]["uri"] == row["model_version"] and body["reference_id"] == row["reference_id"]
        # Equal to float precision: Serve batches requests as they come, and CPU kernels sum in an order that
        # depends on the batch size (as the scan's own test notes between its batch sizes).
        assert [body["probabilities"][c] for c in class_names] == pytest.approx(row["probabilities"], abs=1e-4)
    for uri, kind in serve_world.bad.items():
        refused = _post(served, storage.read_bytes(uri), Path(uri).name)
        assert refused.status_code in (400, 415) and refused.json()["error"]["kind"] == kind


def test_concurrent_requests_are_batched_and_all_answered(served: str, serve_world: World) -> None:
    data = serve_world.storage.read_bytes(serve_world.good[0])
    results: list[int] = []

    def send() -> None:
        results.append(_post(served, data, "x.png").status_code)

    threads = [threading.Thread(target=send) for _ in range(24)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [200] * 24
    batch = httpx.post(f"{served}/v1/attribute/batch", timeout=60,
                       files=[("files", (f"{i}.png", data, "image/png")) for i in range(5)]
                       + [("files", ("bad.png", b"nope", "image/png"))]).json()
    assert (batch["ok"], batch["failed"]) == (5, 1)


def test_a_new_champion_is_served_without_failing_requests(served: str, serve_world: World) -> None:
    storage, tracking = serve_world.storage, serve_world.tracking_uri
    data = storage.read_bytes(serve_world.good[0])
    before = _post(served, data, "x.png").json()["model"]["version"]
    seen: list[tuple[float, int, str | None]] = []
    stop = threading.Event()

    def load() -> None:
        with httpx.Client(timeout=60) as client:
            while not stop.is_set():
                response = client.post(f"{served}/v1/attribute", files={"file": ("x.png", data, "image/png")})
                version = response.json()["model"]["version"] if response.status_code == 200 else None
                seen.append((time.monotonic(), response.status_code, version))

    worker = threading.Thread(target=load)
    worker.start()
    try:
        time.sleep(1.0)
        # A second version of the served name: the same training, registered again, then made champion.
        from causalprint.attribution.training import TrainJobConfig
        from causalprint.attribution.dataset import DataConfig
        from scan_world import COLUMNS

        job = TrainJobConfig(storage=storage.config, data=DataConfig(features="features/scan", columns=COLUMNS))
        register_model(storage, tracking, job, TINY_MODEL)
        client = mlflow.MlflowClient(tracking)
        new = str(max(int(v.version) for v in client.search_model_versions(f"name='{TINY_MODEL}'")))
        assert new != before
        switched = time.monotonic()
        deadline = switched + 60
        while time.monotonic() < deadline and not any(v == new for _, _, v in seen):
            time.sleep(0.2)
        time.sleep(1.0)
    finally:
        stop.set()
        worker.join()
    assert seen and all(code == 200 for _, code, _ in seen), [c for _, c, _ in seen if c != 200]
    versions = [v for _, _, v in seen]
    assert versions[0] == before and versions[-1] == new
    first_new = versions.index(new)
    assert all(v == new for v in versions[first_new:])  # once switched, never back
    # The version header still reaches the old version (A/B), on a replica that loads it on demand.
    pinned = _post(served, data, "x.png", headers={"X-Model-Version": before}).json()
    assert pinned["model"]["version"] == before
    assert httpx.get(f"{served}/v1/models", timeout=30).json()["serving"]["model"]["version"] == new


def test_the_client_and_the_attribute_command(served: str, serve_world: World, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    from causalprint.cli import main
    from causalprint.serving.client import CausalprintClient, ServiceError

    storage = serve_world.storage
    good = tmp_path / "good.png"
    good.write_bytes(storage.read_bytes(serve_world.good[0]))
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"nothing")
    with CausalprintClient(served) as client:
        assert client.ready()
        answer = client.attribute(good)
        assert client.attribute(f"storage:{storage.relative(serve_world.good[0])}")["source"] == answer["source"]
        with pytest.raises(ServiceError) as refused:
            client.attribute(bad)
        assert (refused.value.status, refused.value.kind) == (415, "not_an_image")
        assert client.verify(good, answer["source"], threshold=0.01)["probability"] > 0
        assert {s["name"] for s in client.sources()["sources"]} == set(answer["probabilities"])
    capsys.readouterr()
    assert main(["attribute", str(good), str(bad), "--url", served]) == 1  # one image failed
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"{good}\t{answer['source']}") and "415 not_an_image" in out[1]
    assert main(["attribute", str(good), "--url", served, "--json"]) == 0
    import json

    assert json.loads(capsys.readouterr().out)["source"] == answer["source"]


def test_hostile_uploads_over_serve_get_a_4xx_and_it_keeps_serving(served: str, serve_world: World) -> None:
    from image_samples import bomb_png, header_only_png

    good = serve_world.storage.read_bytes(serve_world.good[0])
    for name, data, status in (("bomb.png", bomb_png(), 413), ("huge.png", header_only_png(100_000, 100_000), 413),
                               ("truncated.png", good[: len(good) // 2], 400), ("empty.png", b"", 400),
                               ("text.png", b"hello", 415)):
        response = _post(served, data, name)
        assert response.status_code == status, (name, response.text)
        assert response.json()["error"]["reason"]
    assert _post(served, good, "good.png").status_code == 200
    assert httpx.get(f"{served}/readyz", timeout=30).status_code == 200
