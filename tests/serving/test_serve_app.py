"""The application on Ray Serve, over real HTTP: the scan's decisions, batching, a champion change under load,
the version header, hostile uploads, the client, and the web page in a real headless browser."""

from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path

import httpx
import mlflow
import pytest
from scan_world import TINY_MODEL, World, register_model
from serve_helpers import serve_job

from causalprint.data.parts import read_parts
from causalprint.scan.job import run_scan
from causalprint.scan.report import CLASS_NAMES_KEY

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def served(serve_world: World) -> str:
    """The real application on Ray Serve (both deployments, HTTP proxy on 127.0.0.1), keyless; its URL. Module
    scope: Serve stops after this module, so its replicas' logs never reach later tests' output."""
    import socket

    from causalprint.serving import launcher

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = launcher.start(serve_job(serve_world, port=port, refresh_s=1.0), ready_timeout_s=240)
    yield url
    launcher.stop()


def _post(url: str, data: bytes, name: str, **kwargs) -> httpx.Response:
    return httpx.post(f"{url}/v1/attribute", files={"file": (name, data, "image/png")}, timeout=60, **kwargs)


def test_decisions_over_http_equal_the_scans(served: str, serve_world: World) -> None:
    import json

    storage = serve_world.storage
    summary = run_scan(serve_world.job("scans/serve-check"))
    table = read_parts(storage, summary["report"])
    class_names = json.loads(table.schema.metadata[CLASS_NAMES_KEY])
    rows = {r["uri"]: r for r in table.to_pylist()}
    for uri in serve_world.good:
        body = _post(served, storage.read_bytes(uri), Path(uri).name).json()
        row = rows[uri]
        assert (body["source"], body["family"], body["architecture"], body["unknown"]) == (
            row["predicted"],
            row["source_family"],
            row["architecture"],
            row["unknown"],
        )
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
    batch = httpx.post(
        f"{served}/v1/attribute/batch",
        timeout=60,
        files=[("files", (f"{i}.png", data, "image/png")) for i in range(5)]
        + [("files", ("bad.png", b"nope", "image/png"))],
    ).json()
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
        from scan_world import COLUMNS

        from causalprint.attribution.dataset import DataConfig
        from causalprint.attribution.training.config import TrainJobConfig

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


def test_the_client_and_the_attribute_command(
    served: str, serve_world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
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
        top = max(answer["probabilities"], key=answer["probabilities"].get)
        assert client.verify(good, top, threshold=0.01)["probability"] == pytest.approx(answer["probabilities"][top])
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
    for name, data, status in (
        ("bomb.png", bomb_png(), 413),
        ("huge.png", header_only_png(100_000, 100_000), 413),
        ("truncated.png", good[: len(good) // 2], 400),
        ("empty.png", b"", 400),
        ("text.png", b"hello", 415),
    ):
        response = _post(served, data, name)
        assert response.status_code == status, (name, response.text)
        assert response.json()["error"]["reason"]
    assert _post(served, good, "good.png").status_code == 200
    assert httpx.get(f"{served}/readyz", timeout=30).status_code == 200


# -- the web page in a real headless Chromium (Debian's chromium and chromium-driver; nothing is downloaded) --
CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "images" / "web-page.png"


@pytest.fixture()
def browser():
    if not (CHROMIUM and DRIVER):
        pytest.fail("Debian's chromium and chromium-driver are required (infra/local/test.sh installs them)")
    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager must never fetch a browser or a driver
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1000,1250",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=DRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def test_the_page_attributes_a_chosen_image(browser, served: str, serve_world: World, tmp_path: Path) -> None:
    import httpx
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    uri = serve_world.good[0]
    image = tmp_path / Path(uri).name
    image.write_bytes(serve_world.storage.read_bytes(uri))
    expected = httpx.post(f"{served}/v1/attribute", files={"file": (image.name, image.read_bytes())}, timeout=60).json()

    browser.get(served + "/")
    browser.find_element(By.ID, "file").send_keys(str(image))
    WebDriverWait(browser, 60).until(ec.visibility_of_element_located((By.ID, "result")))
    decision = browser.find_element(By.ID, "decision")
    assert decision.get_attribute("data-source") == expected["source"]
    flag = browser.find_element(By.ID, "unknown-flag")
    assert flag.get_attribute("data-unknown") == str(expected["unknown"]).lower()
    bars = {b.get_attribute("data-source"): b.text for b in browser.find_elements(By.CSS_SELECTOR, "#bars .bar")}
    assert set(bars) == set(expected["probabilities"])
    top = max(expected["probabilities"], key=expected["probabilities"].get)
    assert f"{100 * expected['probabilities'][top]:.1f} %" in bars[top]
    heatmap = browser.find_element(By.ID, "heatmap")
    assert heatmap.get_attribute("src").startswith("data:image/png;base64,")
    assert browser.execute_script("return arguments[0].naturalWidth", heatmap) == 16
    assert not browser.find_element(By.ID, "error").text

    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    browser.find_element(By.ID, "file").send_keys(str(bad))
    WebDriverWait(browser, 30).until(lambda d: d.find_element(By.ID, "error").text)
    assert "415 not_an_image" in browser.find_element(By.ID, "error").text

    browser.find_element(By.ID, "file").send_keys(str(image))
    WebDriverWait(browser, 60).until(ec.visibility_of_element_located((By.ID, "result")))
    # Anonymize it (this world has no real class: away from the named source), before and after side by side.
    from selenium.webdriver.support.ui import Select

    Select(browser.find_element(By.ID, "target")).select_by_value("away")
    browser.find_element(By.ID, "anonymize").click()
    WebDriverWait(browser, 120).until(ec.visibility_of_element_located((By.ID, "anon-result")))
    assert browser.find_element(By.ID, "anon-before").text == expected["source"]
    after = browser.find_element(By.ID, "anon-after").text
    reanswer = httpx.post(
        f"{served}/v1/attribute",
        timeout=60,
        files={"file": ("a.png", _png_of(browser.find_element(By.ID, "anon-image").get_attribute("src")))},
    ).json()
    assert reanswer["source"] == after  # the page shows what the returned PNG is attributed to
    assert "PSNR" in browser.find_element(By.ID, "anon-quality").text
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    if os.environ.get("CI") != "true":  # CI's clone is not where docs live; a session refreshes the screenshot
        browser.save_screenshot(str(SCREENSHOT))


def _png_of(data_url: str) -> bytes:
    import base64

    return base64.b64decode(data_url.split(",", 1)[1])
