"""MOS statistics against values computed by hand, and the written report."""

from __future__ import annotations

import itertools
import json
import math

import pytest
from mos_util import make_folders
from PIL import Image

from srgan.cli import main
from srgan.mos import db
from srgan.mos.report import (
    agreement,
    calibration_check,
    mean_ci,
    mos_table,
    paired_scores,
    retest_pairs,
    score_counts,
    wilcoxon,
)


def _row(rater, method, stem, score, *, dataset="Set5", phase="test", showing=1, anchor=None):
    return {"rater": rater, "position": 0, "phase": phase, "showing": showing, "method": method,
            "dataset": dataset, "stem": stem, "anchor": anchor, "score": score}  # fmt: skip


def test_mean_ci_by_hand():
    s = mean_ci([1, 2, 3, 4, 5])
    # mean 3, s = sqrt(10 / 4), t(0.975, 4) = 2.776445 (tables): half width 2.776445 * sqrt(2.5 / 5)
    assert s["n"] == 5 and s["mean"] == 3 and s["std"] == pytest.approx(math.sqrt(2.5))
    assert s["ci_high"] - 3 == pytest.approx(2.776445 * math.sqrt(0.5), abs=1e-6)
    assert s["ci_low"] == pytest.approx(6 - s["ci_high"])
    assert math.isnan(mean_ci([4])["ci_low"]) and mean_ci([])["n"] == 0


def _exact_two_sided(diffs):
    """Brute force over all 2^n sign flips with average ranks: P(min(W+, W-) <= observed), two-sided."""
    d = [x for x in diffs if x != 0]
    mags = sorted(abs(x) for x in d)
    rank = {m: sum(i + 1 for i, v in enumerate(mags) if v == m) / mags.count(m) for m in set(mags)}
    ranks = [rank[abs(x)] for x in d]
    w_plus = sum(r for r, x in zip(ranks, d, strict=True) if x > 0)
    obs = min(w_plus, sum(ranks) - w_plus)
    hits = sum(
        min(w, sum(ranks) - w) <= obs + 1e-9
        for w in (
            sum(r for r, s in zip(ranks, signs, strict=True) if s)
            for signs in itertools.product((0, 1), repeat=len(d))
        )
    )
    return hits / 2 ** len(d)


def test_wilcoxon_by_hand():
    # all four differences positive: W- = 0, P = 2 * 1/16
    assert wilcoxon([(5, 4), (5, 3), (4, 1), (5, 1)])["pvalue"] == pytest.approx(0.125)
    # ranks 1, 2, 3 positive, 4 negative: W- = 4; rank subsets with sum <= 4:
    # {}, 1, 2, 3, 4, 12, 13 -> p = 2 * 7/16
    assert wilcoxon([(2, 1), (3, 1), (4, 1), (1, 5)])["pvalue"] == pytest.approx(0.875)
    # a zero difference is dropped (zero_method 'wilcox')
    w = wilcoxon([(3, 3), (5, 4), (5, 3), (4, 1), (5, 1)])
    assert (w["n"], w["nonzero"], w["pvalue"]) == (5, 4, pytest.approx(0.125))
    # ties: nine |1| (average rank 5), one 2 (rank 10), one -1: W- = 5; sign flips with min(W+, W-) <= 5:
    # W- = 0 (1 way) or 5 (9 ways), each side: 20 / 1024
    pairs = [(4, 3)] * 8 + [(2, 3), (5, 3)]
    assert wilcoxon(pairs)["pvalue"] == pytest.approx(20 / 1024) == _exact_two_sided([1] * 8 + [-1, 2])
    # n = 20 with ties: normal approximation with tie correction, no continuity correction
    pairs = [(4, 3)] * 16 + [(3, 4)] * 2 + [(5, 3)] * 2
    w_minus, mean = 2 * 9.5, 20 * 21 / 4
    var = 20 * 21 * 41 / 24 - ((18**3 - 18) + (2**3 - 2)) / 48
    p = math.erfc(abs(w_minus - mean) / math.sqrt(var) / math.sqrt(2))
    w = wilcoxon(pairs)
    assert (w["statistic"], w["pvalue"], w["mean_diff"]) == (19, pytest.approx(p, rel=1e-9), 0.9)
    assert wilcoxon([(3, 3), (2, 2)])["pvalue"] == 1.0


def test_tables_pairing_calibration_retest_by_hand():
    rows = [
        _row(1, "A", "x", 4), _row(1, "B", "x", 2), _row(1, "A", "y", 5), _row(1, "B", "y", 3),
        _row(2, "A", "x", 3), _row(2, "B", "x", 3), _row(2, "A", "y", 2, dataset="Set14"),
        _row(1, "A", "x", 5, showing=2),  # a repeat: not in the MOS
        _row(2, "B", "y", 1, dataset="Set14"),
        _row(1, "nearest", "c", 1, phase="calibration", anchor=1),
        _row(1, "hr", "c", 4, phase="calibration", anchor=5),
        _row(2, "nearest", "c", 1, phase="calibration", anchor=1),
        _row(2, "hr", "c", 5, phase="calibration", anchor=5),
        _row(2, "nearest", "d", 2, phase="calibration", anchor=1),
    ]  # fmt: skip
    table = mos_table(rows, ["A", "B"])
    assert list(table) == ["Set14", "Set5", "all"]
    assert table["Set5"]["A"]["mean"] == pytest.approx(4) and table["Set5"]["A"]["n"] == 3
    assert table["all"]["B"]["mean"] == pytest.approx((2 + 3 + 3 + 1) / 4)
    assert table["Set14"]["B"]["n"] == 1
    assert score_counts(rows, ["A", "B"], "Set5") == {"A": [0, 0, 1, 1, 1], "B": [0, 1, 2, 0, 0]}
    # pairs: same rater, same set, same image, first showing
    assert paired_scores(rows, "A", "B") == [(4, 2), (5, 3), (2, 1), (3, 3)]  # by rater, set, image
    assert paired_scores(rows, "A", "B", "Set14") == [(2, 1)]
    cal = calibration_check(rows)
    assert (cal[1]["low_hits"], cal[1]["low_n"], cal[1]["high_hits"], cal[1]["high_n"]) == (1, 1, 0, 1)
    assert (cal[2]["low_rate"], cal[2]["high_rate"]) == (0.5, 1.0)
    assert retest_pairs(rows) == {1: [(4, 5)]}
    # Spearman by hand: ranks (1..5) vs (1, 3, 2, 4, 5): 1 - 6 * 2 / (5 * 24) = 0.9
    a = agreement([(1, 1), (2, 3), (3, 2), (4, 4), (5, 5)])
    assert (a["n"], a["exact"], a["within_one"], a["mean_abs_diff"]) == (5, 0.6, 1.0, 0.4)
    assert a["spearman"] == pytest.approx(0.9)
    assert agreement([(1, 4), (2, 2)])["within_one"] == 0.5


def test_report_from_a_study(tmp_path, capsys):
    f = make_folders(tmp_path, methods=("bicubic", "SRGAN"), sets=("Set5", "Set14"), images=("a", "b"))
    made = db.create_study(tmp_path / "s.sqlite", f["methods"], f["reference"], f["calibration"],
                           repeats=2, raters=3, seed=0)  # fmt: skip
    truth = {"bicubic": 2, "SRGAN": 4, "HR": 5}
    with db.open_study(made.path) as conn:
        for token in made.rater_tokens:
            rows = conn.execute(
                "SELECT a.position, a.image_id, i.method, i.anchor FROM assignments a JOIN images i "
                "ON i.id = a.image_id JOIN raters r ON r.id = a.rater_id WHERE r.token = ?",
                (token,),
            ).fetchall()
            for position, image_id, method, anchor in rows:
                db.record_rating(conn, token, position, image_id, anchor or truth[method])
    out = tmp_path / "rep"
    assert main(["mos", "report", str(made.path), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "| SRGAN | 12 | 4.00 |" in printed and "| 1 | 1/1 (100%) | 1/1 (100%) |" in printed
    summary = json.loads((out / "report.json").read_text())
    assert summary["mos"]["all"]["HR"]["mean"] == 5 and summary["mos"]["Set14"]["bicubic"]["n"] == 6
    w = summary["wilcoxon"]["all"]["SRGAN"]["bicubic"]
    assert (w["n"], w["mean_diff"]) == (12, 2.0) and w["pvalue"] < 0.05
    assert summary["retest"]["all"] == {"n": 6, "exact": 1.0, "within_one": 1.0, "mean_abs_diff": 0.0,
                                        "spearman": summary["retest"]["all"]["spearman"]}  # fmt: skip
    with Image.open(out / "mos_distribution.png") as img:
        assert img.format == "PNG" and img.width > 300
