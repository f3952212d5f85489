"""Demo MOS study with SYNTHETIC ratings: the README's figures docs/mos_distribution.png (the report's figure)
and docs/mos_rating.png (a screenshot of the rating page in headless chromium).

Images: crops of examples/astronaut_lr.png (public domain) as "HR", shrunk x4 with MATLAB bicubic and
enlarged again by nearest neighbour, bicubic and the shipped SRResNet-MSE. Ratings: 26 made-up raters
whose scores are drawn around a made-up quality per method (no person rated anything). They go in through
the same `record_rating` the web app uses; the report is the real `srgan mos report`.

    PYTHONPATH=src python scripts/mos_demo.py [--out DIR] [--no-screenshot]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
QUALITY = {"nearest": 1.4, "bicubic": 2.0, "SRResNet-MSE": 2.9, "HR": 4.5}  # made up: synthetic ratings
CROPS = {
    "astronaut": (0, 0, 128, 128),
    "face": (32, 8, 96, 72),
    "badge": (56, 64, 120, 128),
    "flag": (0, 0, 64, 64),
}
CALIBRATION = {"cal_left": (0, 64, 64, 128), "cal_right": (64, 0, 128, 64)}


def build_folders(root: Path) -> dict:
    """root/HR, root/sr/<method> (flat folders of PNGs) and root/cal from crops of the example image."""
    from srgan import load_model, upscale
    from srgan.baselines import bicubic_upscale, nearest_upscale
    from srgan.imresize import bicubic_degrade
    from srgan.io import read_image, write_image

    image = read_image(REPO / "examples" / "astronaut_lr.png")
    model = load_model("srresnet")
    methods = {"nearest": nearest_upscale, "bicubic": bicubic_upscale,
               "SRResNet-MSE": lambda lr: upscale(model, lr, colour="none").clamp(0, 1)}  # fmt: skip
    for name, (x0, y0, x1, y1) in CROPS.items():
        hr_img = image[:, y0:y1, x0:x1]
        lr_img = bicubic_degrade(hr_img, 4)  # (3, h, w) -> (3, h/4, w/4)
        (root / "HR").mkdir(parents=True, exist_ok=True)
        write_image(hr_img, root / "HR" / f"{name}.png")
        for method, fn in methods.items():
            (root / "sr" / method).mkdir(parents=True, exist_ok=True)
            write_image(fn(lr_img), root / "sr" / method / f"{name}.png")
    (root / "cal").mkdir(exist_ok=True)
    for name, (x0, y0, x1, y1) in CALIBRATION.items():
        write_image(image[:, y0:y1, x0:x1], root / "cal" / f"{name}.png")
    return {
        "methods": {m: root / "sr" / m for m in methods},
        "reference": root / "HR",
        "calibration": root / "cal",
    }


def synthetic_ratings(study: Path, raters: int, seed: int = 0) -> int:
    """Fill every item of the first `raters` raters with made-up scores; returns the number of ratings."""
    from srgan.mos import db

    rng = random.Random(seed)
    n = 0
    with db.open_study(study) as conn:
        tokens = [t for (t,) in conn.execute("SELECT token FROM raters ORDER BY id LIMIT ?", (raters,))]
        for token in tokens:
            bias = rng.gauss(0, 0.3)
            remembered: dict[str, int] = {}
            rows = conn.execute(
                "SELECT a.position, a.image_id, i.method, i.anchor FROM assignments a JOIN images i "
                "ON i.id = a.image_id JOIN raters r ON r.id = a.rater_id WHERE r.token = ? "
                "ORDER BY a.position",
                (token,),
            ).fetchall()
            for position, image_id, method, anchor in rows:
                if anchor is not None:
                    score = anchor if rng.random() < 0.9 else anchor + (1 if anchor == 1 else -1)
                elif image_id in remembered and rng.random() < 0.6:
                    score = remembered[image_id]  # a repeat, often scored the same
                else:
                    score = min(5, max(1, round(QUALITY[method] + bias + rng.gauss(0, 0.7))))
                remembered.setdefault(image_id, score)
                db.record_rating(conn, token, position, image_id, score)
                n += 1
    return n


def screenshot(study: Path, token: str, path: Path, workdir: Path) -> None:
    """Open the rater's invitation in headless chromium, pass the calibration, screenshot a test item."""
    sys.path.insert(0, str(REPO / "tests"))
    from mos_util import free_port, start_server
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
    from test_mos_browser import chromium

    port = free_port()
    server = start_server(study, port, workdir / "server.log")
    driver = chromium(workdir)
    try:
        driver.set_window_size(760, 520)
        wait = WebDriverWait(driver, 20)
        driver.get(f"http://127.0.0.1:{port}/r/{token}")
        wait.until(lambda d: d.find_element(By.ID, "start").is_displayed())
        driver.find_element(By.ID, "start").click()
        loaded = "const i = document.getElementById('image'); return i.complete ? i.naturalWidth : 0"
        while True:  # rate the calibration (anchor scores) and test items until the largest image shows
            wait.until(lambda d: d.find_element(By.ID, "rating").is_displayed() and d.execute_script(loaded))
            anchor = driver.find_element(By.ID, "phase").get_attribute("data-anchor")
            if not anchor and driver.execute_script(loaded) == 128:
                break
            count = driver.find_element(By.ID, "count").text
            driver.find_element(By.TAG_NAME, "body").send_keys(anchor or "3")
            wait.until(lambda d, c=count: d.find_element(By.ID, "count").text != c)
        driver.save_screenshot(str(path))
    finally:
        driver.quit()
        server.terminate()
        server.wait(timeout=30)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", default=str(REPO / "docs"), help="where the two PNGs go (default docs/)")
    parser.add_argument("--raters", type=int, default=26, help="synthetic raters (paper: 26)")
    parser.add_argument("--no-screenshot", action="store_true", help="only the distribution figure")
    args = parser.parse_args()
    import shutil

    from srgan.mos.db import create_study
    from srgan.mos.report import write_report

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        f = build_folders(root)
        made = create_study(root / "demo.sqlite", f["methods"], f["reference"], f["calibration"],
                            repeats=2, raters=args.raters + 1, seed=0)  # fmt: skip
        n = synthetic_ratings(made.path, args.raters)
        paths = write_report(made.path, root / "report")
        print(paths["markdown"].read_text())
        shutil.copy(paths["figure"], out / "mos_distribution.png")
        print(f"{n} synthetic ratings from {args.raters} raters; wrote {out / 'mos_distribution.png'}")
        if not args.no_screenshot:
            screenshot(made.path, made.rater_tokens[-1], out / "mos_rating.png", root)
            print(f"wrote {out / 'mos_rating.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
