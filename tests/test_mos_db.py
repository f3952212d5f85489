"""MOS study storage: building a study from folders, rater orders, idempotent ratings, the create CLI."""

from __future__ import annotations

import shutil
from collections import Counter

import numpy as np
import pytest
from mos_util import make_folders, write_images
from PIL import Image

from srgan.cli import main
from srgan.mos import db


def _ratings(path):
    with db.open_study(path) as conn:
        return conn.execute("SELECT rater_id, position, score FROM ratings ORDER BY 1, 2").fetchall()


def test_create_copies_and_matches_images(tmp_path):
    f = make_folders(tmp_path, methods=("bicubic", "SRGAN"), sets=("Set5", "Set14"), images=("a", "b"))
    write_images(tmp_path / "sr" / "SRGAN" / "Set5", ["extra"], seed=5)  # not in the reference: left out
    made = db.create_study(tmp_path / "s.sqlite", f["methods"], f["reference"], f["calibration"], seed=1)
    assert made.methods == ["bicubic", "SRGAN", "HR"]
    assert (made.sources, made.test_images, made.calibration_images) == (4, 12, 1)
    assert any("1 images not in the reference" in w for w in made.warnings)
    with db.open_study(made.path) as conn:
        rows = conn.execute("SELECT method, dataset, stem, data FROM images WHERE kind = 'test'").fetchall()
        assert len(rows) == 12
        for method, dataset, stem, data in rows:
            src = f["reference"] / dataset / "HR" if method == "HR" else f["methods"][method] / dataset
            assert data == (src / f"{stem}.png").read_bytes()  # PNG stored byte for byte
        cal = conn.execute("SELECT method, anchor, data FROM images WHERE kind = 'calibration'").fetchall()
    assert sorted((m, a) for m, a, _ in cal) == [("hr", 5), ("nearest", 1)]
    nn = np.asarray(Image.open(__import__("io").BytesIO(next(d for m, _, d in cal if m == "nearest"))))
    assert nn.shape == (16, 24, 3)  # 24x16 is a multiple of 4: kept whole
    assert (nn[::4, ::4] == nn[3::4, 3::4]).all()  # pixel replication: 4x4 blocks
    # the study no longer needs the source folders
    shutil.rmtree(tmp_path / "sr")
    with db.open_study(made.path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM images").fetchone()[0] == 14


def test_create_flat_folders_and_errors(tmp_path):
    write_images(tmp_path / "A", ["x", "y"], seed=1)
    write_images(tmp_path / "HR", ["x", "y"], seed=2)
    write_images(tmp_path / "B", ["x"], seed=3)
    made = db.create_study(tmp_path / "s.sqlite", {"A": tmp_path / "A"}, tmp_path / "HR", None)
    assert (made.sources, made.calibration_images) == (2, 0)
    with pytest.raises(FileExistsError, match="--force"):
        db.create_study(made.path, {"A": tmp_path / "A"}, tmp_path / "HR", None)
    with pytest.raises(ValueError, match=r"method B .* lacks 1 of the 2 reference images \(y\)"):
        db.create_study(tmp_path / "t.sqlite", {"B": tmp_path / "B"}, tmp_path / "HR", None)
    with pytest.raises(ValueError, match="reserved"):
        db.create_study(tmp_path / "t.sqlite", {"hr": tmp_path / "A"}, tmp_path / "HR", None)
    with pytest.raises(ValueError, match="calibration images must not be in the test"):
        db.create_study(tmp_path / "t.sqlite", {"A": tmp_path / "A"}, tmp_path / "HR", tmp_path / "A")
    assert not (tmp_path / "t.sqlite").exists()
    # --force replaces the study (new admin token)
    with db.open_study(made.path) as conn:
        old = db.get_meta(conn)["admin_token"]
    db.create_study(made.path, {"A": tmp_path / "A"}, tmp_path / "HR", None, force=True)
    with db.open_study(made.path) as conn:
        assert db.get_meta(conn)["admin_token"] != old


def test_rater_orders_balance_and_repeats(tmp_path):
    f = make_folders(tmp_path, methods=("m1",), images=("a", "b", "c", "d"), calibration=("c1", "c2"))
    made = db.create_study(
        tmp_path / "s.sqlite", f["methods"], f["reference"], f["calibration"],
        images_per_rater=1, repeats=1, raters=4, seed=3,
    )  # fmt: skip
    with db.open_study(made.path) as conn:
        rows = conn.execute(
            "SELECT a.rater_id, a.position, a.phase, a.showing, a.image_id, i.stem FROM assignments a "
            "JOIN images i ON i.id = a.image_id ORDER BY a.rater_id, a.position"
        ).fetchall()
    by_rater: dict[int, list] = {}
    for row in rows:
        by_rater.setdefault(row[0], []).append(row[1:])
    stems_per_rater = []
    for items in by_rater.values():
        assert [p for p, *_ in items] == list(range(7))  # 4 calibration + 2 versions + 1 repeat
        assert [ph for _, ph, *_ in items] == ["calibration"] * 4 + ["test"] * 3
        test = [(sh, img, stem) for _, ph, sh, img, stem in items if ph == "test"]
        assert sorted(sh for sh, _, _ in test) == [1, 1, 2]
        repeated = next(img for sh, img, _ in test if sh == 2)
        first = [i for i, (sh, img, _) in enumerate(test) if img == repeated]
        assert len(first) == 2 and test[first[0]][0] == 1  # the first showing comes first
        stems_per_rater.append({stem for _, _, stem in test})
    # balanced: 4 raters x 1 image each covers the 4 images once
    assert Counter(s for stems in stems_per_rater for s in stems) == dict.fromkeys("abcd", 1)
    with db.open_study(made.path) as conn:
        tokens = db.add_raters(conn, 4)
        assert len(set(tokens)) == 4 and all(len(t) >= 20 for t in tokens)
        counts = conn.execute(
            "SELECT i.stem, COUNT(DISTINCT a.rater_id) FROM assignments a JOIN images i ON i.id = a.image_id "
            "WHERE a.phase = 'test' GROUP BY i.stem"
        ).fetchall()
    assert dict(counts) == dict.fromkeys("abcd", 2)


def test_ratings_are_idempotent_and_validated(tmp_path):
    f = make_folders(tmp_path)
    made = db.create_study(tmp_path / "s.sqlite", f["methods"], f["reference"], f["calibration"], raters=2)
    token, other = made.rater_tokens
    with db.open_study(made.path) as conn:
        item = db.rater_state(conn, token)["next"]
        assert db.record_rating(conn, token, item["position"], item["image"], 2) is True
        assert db.record_rating(conn, token, item["position"], item["image"], 2) is False  # a retry
        with pytest.raises(db.Conflict, match="already rated 2"):
            db.record_rating(conn, token, item["position"], item["image"], 4)
        for bad in (0, 6, 2.5, "3", True, None):
            with pytest.raises(db.StudyError, match="1 to 5"):
                db.record_rating(conn, token, item["position"] + 1, item["image"], bad)
        with pytest.raises(db.NotFound, match="unknown invitation"):
            db.record_rating(conn, "nope", item["position"], item["image"], 3)
        with pytest.raises(db.NotFound, match="no item at position 999"):
            db.record_rating(conn, token, 999, item["image"], 3)
        nxt = db.rater_state(conn, token)["next"]
        with pytest.raises(db.Conflict, match="out of date"):
            db.record_rating(conn, token, nxt["position"], item["image"], 3)
        assert db.rater_state(conn, other)["rated"] == 0
        state = db.rater_state(conn, token)
    assert (state["rated"], state["next"]["position"]) == (1, item["position"] + 1)
    assert _ratings(made.path) == [(1, item["position"], 2)]


def test_create_cli(tmp_path, capsys):
    f = make_folders(tmp_path)
    argv = ["mos", "create", str(tmp_path / "s.sqlite"), "--reference", str(f["reference"]),
            "--calibration", str(f["calibration"]), "--repeats", "1", "--raters", "3"]  # fmt: skip
    for name, folder in f["methods"].items():
        argv += ["--method", f"{name}={folder}"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "2 images x 3 versions (bicubic, SRGAN, HR), 1 calibration images, 3 raters" in out
    assert main(argv) == 2
    assert "exists: pass --force" in capsys.readouterr().err
    assert main(argv + ["--force"]) == 0
    assert main(["mos", "create", str(tmp_path / "t.sqlite"), "--reference", "x", "--method", "A"]) == 2
    assert "write NAME=DIR" in capsys.readouterr().err
    assert main(["mos", "report", str(tmp_path / "s.sqlite")]) == 2
    assert "no test ratings yet" in capsys.readouterr().err
    assert main(["mos", "serve", str(tmp_path / "missing.sqlite")]) == 2
    assert "srgan mos create" in capsys.readouterr().err
