"""The demo in headless Chromium (as the MOS browser test): upload an image, move the realism slider, upscale,
see the before/after images and the note, and save the screenshot the README shows (docs/demo.png)."""

from __future__ import annotations

from pathlib import Path

import pytest
from mos_util import free_port
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait
from test_mos_browser import _image_loaded, chromium

from srgan.demo import build_demo

pytestmark = [pytest.mark.browser, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "astronaut_lr.png"


def test_upscale_in_chromium(tmp_path):
    port = free_port()
    demo = build_demo(device="cpu", examples=[EXAMPLE])
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    driver = chromium(tmp_path)
    driver.set_window_size(1280, 900)
    wait = WebDriverWait(driver, 60)
    try:
        driver.get(f"http://127.0.0.1:{port}/")
        upload = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#input-image input[type=file]"))
        upload.send_keys(str(EXAMPLE))
        wait.until(lambda d: _image_loaded(d, "#input-image img") and
                   d.find_elements(By.CSS_SELECTOR, "#input-image img"))  # fmt: skip
        slider = driver.find_element(By.CSS_SELECTOR, "#realism input[type=range]")
        slider.send_keys(*[Keys.ARROW_LEFT] * 4)  # 1 -> 0.8 in steps of 0.05
        number = driver.find_element(By.CSS_SELECTOR, "#realism input[type=number]")
        wait.until(lambda d: float(number.get_attribute("value")) == pytest.approx(0.8))
        driver.find_element(By.ID, "upscale").click()
        wait.until(lambda d: "realism 0.8" in d.find_element(By.ID, "status").text)
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#compare img")) >= 2
                   and _image_loaded(d, "#compare img"))  # fmt: skip
        sizes = driver.execute_script(
            "return [...document.querySelectorAll('#compare img')]"
            ".map(i => [i.naturalWidth, i.naturalHeight])")
        assert {tuple(s) for s in sizes} == {(512, 512)}  # before and after at the same display size
        assert "128x128 -> 512x512" in driver.find_element(By.ID, "status").text
        driver.save_screenshot(str(REPO / "docs" / "demo.png"))
    finally:
        driver.quit()
        demo.close()
