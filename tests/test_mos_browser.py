"""End to end in headless Chromium (Debian's chromium + chromium-driver, driven by selenium): open an
invitation, read the instructions, pass calibration, rate a tiny study to the end with clicks and keys,
reload midway, then check the database and the report. Fails (never skips) without chromium."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mos_util import free_port, make_folders, start_server
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from srgan.cli import main
from srgan.mos import db

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")


def chromium(tmp_path: Path) -> webdriver.Chrome:
    """Headless Debian chromium with a fresh profile and no network services of its own."""
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.fail("the browser test needs Debian's chromium: apt-get install -y chromium chromium-driver")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1100,800",
                 f"--user-data-dir={tmp_path / 'chromium-profile'}"):  # fmt: skip
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)


def _visible(driver, element_id: str) -> bool:
    return driver.find_element(By.ID, element_id).is_displayed()


def _image_loaded(driver, css: str) -> bool:
    return driver.execute_script(
        "return [...document.querySelectorAll(arguments[0])].every(i => i.complete && i.naturalWidth > 0)",
        css,
    )


def test_rate_a_study_in_chromium(tmp_path):
    f = make_folders(tmp_path, methods=("bicubic", "SRGAN"), images=("a", "b"), calibration=("cal",))
    made = db.create_study(tmp_path / "s.sqlite", f["methods"], f["reference"], f["calibration"],
                           repeats=1, raters=1, seed=0)  # fmt: skip
    total = 2 + 6 + 1
    port = free_port()
    server = start_server(made.path, port, tmp_path / "server.log")
    driver = chromium(tmp_path)
    wait = WebDriverWait(driver, 20)
    given: dict[int, int] = {}
    try:
        driver.get(f"http://127.0.0.1:{port}/r/{made.rater_tokens[0]}")
        wait.until(lambda d: _visible(d, "instructions") and _image_loaded(d, "#anchors img"))
        captions = [c.text for c in driver.find_elements(By.CSS_SELECTOR, "#anchors figcaption")]
        assert captions == ["Score 1 (bad)", "Score 5 (excellent)"]
        driver.find_element(By.ID, "start").click()
        for k in range(total):
            if k == 4:  # reload midway: the page resumes at the first unrated item
                driver.refresh()
            wait.until(
                lambda d, k=k: (
                    _visible(d, "rating") and d.find_element(By.ID, "count").text == f"{k + 1} / {total}"
                )
            )
            wait.until(lambda d: _image_loaded(d, "#image"))
            position = int(driver.find_element(By.ID, "image").get_attribute("data-position"))
            assert position == k
            phase = driver.find_element(By.ID, "phase")
            anchor = phase.get_attribute("data-anchor")
            score = int(anchor) if anchor else 1 + (k * 2) % 5
            assert ("Calibration" in phase.text) == (k < 2)
            if k % 2:
                driver.find_element(By.TAG_NAME, "body").send_keys(str(score))  # keys 1-5
            else:
                driver.find_element(By.CSS_SELECTOR, f"#scores button[data-score='{score}']").click()
            given[position] = score
        wait.until(lambda d: _visible(d, "done"))
        assert "Thank you" in driver.find_element(By.ID, "done").text
        driver.refresh()  # a finished rater who comes back sees the end, not the test again
        wait.until(lambda d: _visible(d, "done"))
    finally:
        driver.quit()
        server.terminate()
        server.wait(timeout=30)
    with db.open_study(made.path) as conn:
        rows = db.all_ratings(conn)
    assert {r["position"]: r["score"] for r in rows} == given and len(rows) == total
    assert all(r["score"] == r["anchor"] for r in rows if r["phase"] == "calibration")
    out = tmp_path / "report"
    assert main(["mos", "report", str(made.path), "--out", str(out)]) == 0
    summary = json.loads((out / "report.json").read_text())
    assert summary["calibration"]["1"] == {"low_n": 1, "low_hits": 1, "high_n": 1, "high_hits": 1,
                                           "low_rate": 1.0, "high_rate": 1.0}  # fmt: skip
    assert summary["retest"]["all"]["n"] == 1 and summary["ratings"] == total
    assert sum(summary["mos"]["Set5"][m]["n"] for m in ("bicubic", "SRGAN", "HR")) == 6
