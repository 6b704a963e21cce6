"""The page in a real headless browser (Debian's chromium through selenium): a bad upload shows its message,
then a photo is uploaded, restored, compared in the slider (zoomed with the mouse wheel) and offered for download.

Skipped where chromium or chromedriver is not installed (``apt-get install -y chromium chromium-driver``).
``LAFORMER_APP_SCREENSHOT=path.png`` also saves the final screenshot there (docs/images/app.png, on docs/web-demo.md).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

pytest.importorskip("gradio")
webdriver = pytest.importorskip("selenium.webdriver")

from selenium.common.exceptions import WebDriverException  # noqa: E402
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.actions.wheel_input import ScrollOrigin  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
# Flags for a closed network: no background requests to Google's services, no first-run pages.
CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,1100",
)
WAIT_S = 120

pytestmark = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER),
    reason="no chromium/chromedriver on this machine (apt-get install -y chromium chromium-driver)",
)


@pytest.fixture
def browser(tmp_path):
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={tempfile.mkdtemp(dir=tmp_path)}"):
        options.add_argument(flag)
    try:
        driver = webdriver.Chrome(service=webdriver.ChromeService(CHROMEDRIVER), options=options)
    except WebDriverException as exc:
        pytest.skip(f"chromium did not start: {str(exc).splitlines()[0]}")
    yield driver
    driver.quit()


def page_text(driver) -> str:
    return driver.find_element(By.TAG_NAME, "body").text


def upload(driver, path: Path) -> None:
    driver.find_element(By.CSS_SELECTOR, "#upload input[type=file]").send_keys(str(path))
    # the page shows the name in two parts (stem, then extension)
    WebDriverWait(driver, WAIT_S).until(lambda d: path.stem in d.find_element(By.ID, "upload").text)


def test_restore_in_the_browser(app_server, browser, photos, tmp_path):
    wait = WebDriverWait(browser, WAIT_S)
    browser.get(app_server.url)
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#upload input[type=file]"))
    assert "tiny laformer (rela)" in page_text(browser)

    # A file that is not a photo: the message appears in the page.
    bad = tmp_path / "scan.png"
    bad.write_text("not an image")
    upload(browser, bad)
    browser.find_element(By.ID, "restore").click()
    wait.until(lambda d: "scan.png cannot be read as an image" in page_text(d))
    browser.find_element(By.CSS_SELECTOR, "#upload button[aria-label=Clear]").click()
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#upload input[type=file]"))

    # Then a real photo: restored, shown before / after, offered for download.
    upload(browser, photos["rgb8.png"])
    browser.find_element(By.ID, "restore").click()
    wait.until(lambda d: "restored in" in d.find_element(By.ID, "status").text)
    images = wait.until(
        lambda d: [i for i in d.find_elements(By.CSS_SELECTOR, "#slider img") if i.get_attribute("src")]
    )
    assert len(images) >= 2
    sources = {image.get_attribute("src").rsplit("/", 1)[-1] for image in images}
    assert {"rgb8_input.png", "rgb8_restored_preview.png"} <= sources
    assert "96 x 72, RGB, 8 bit" in browser.find_element(By.ID, "status").text
    link = wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#result a[href]"))
    assert link[0].get_attribute("href").endswith("rgb8_restored.png")

    # The slider zooms with the mouse wheel (left of the handle, which sits in the middle), both images alike.
    wait.until(lambda d: all(i.size["width"] > 0 for i in d.find_elements(By.CSS_SELECTOR, "#slider img")))
    target = browser.find_elements(By.CSS_SELECTOR, "#slider img")[0]
    assert target.value_of_css_property("transform") in ("none", "matrix(1, 0, 0, 1, 0, 0)")
    origin = ScrollOrigin.from_element(target, -target.size["width"] // 4, 0)
    ActionChains(browser).scroll_from_origin(origin, 0, -300).perform()
    wait.until(
        lambda d: (
            d.find_elements(By.CSS_SELECTOR, "#slider img")[0]
            .value_of_css_property("transform")
            .startswith("matrix(1.05")
        )
    )
    transforms = {i.value_of_css_property("transform") for i in browser.find_elements(By.CSS_SELECTOR, "#slider img")}
    assert len(transforms) == 1  # before and after stay aligned

    # Everything the page loaded came from the app itself: no fonts, scripts or analytics from elsewhere.
    resources = browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert resources and all(r.startswith(app_server.url.rstrip("/")) or r.startswith("data:") for r in resources), [
        r for r in resources if not r.startswith(app_server.url.rstrip("/"))
    ]

    screenshot = tmp_path / "app.png"
    browser.save_screenshot(str(screenshot))
    assert screenshot.stat().st_size > 10_000
    if target_path := os.environ.get("LAFORMER_APP_SCREENSHOT"):
        shutil.copy(screenshot, target_path)
    assert app_server.process.poll() is None
