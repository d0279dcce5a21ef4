"""The web page in a real headless Chromium (Debian's chromium and chromium-driver; nothing is downloaded):
choose an image, read the decision, the unknown flag, the bars and the heatmap from the page."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from scan_world import World

pytestmark = pytest.mark.slow
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
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=1000,1250"):
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
    expected = httpx.post(f"{served}/v1/attribute", files={"file": (image.name, image.read_bytes())},
                          timeout=60).json()

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
    reanswer = httpx.post(f"{served}/v1/attribute", timeout=60, files={"file": ("a.png", _png_of(
        browser.find_element(By.ID, "anon-image").get_attribute("src")))}).json()
    assert reanswer["source"] == after  # the page shows what the returned PNG is attributed to
    assert "PSNR" in browser.find_element(By.ID, "anon-quality").text
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    if os.environ.get("CI") != "true":  # CI's clone is not where docs live; a session refreshes the screenshot
        browser.save_screenshot(str(SCREENSHOT))


def _png_of(data_url: str) -> bytes:
    import base64

    return base64.b64decode(data_url.split(",", 1)[1])
