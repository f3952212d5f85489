"""MOS statistics and the report: MOS per method and set with 95% confidence intervals, the paper's Figure 5
(colour-coded score distribution), a Wilcoxon signed-rank significance matrix, the calibration check and
test-retest agreement. Pure functions over the rating rows of `db.all_ratings`.

Conventions
- MOS uses test items at their first showing; second showings (repeats) only enter test-retest agreement.
- 95% CI: mean +- t(0.975, n-1) * s / sqrt(n), s the sample standard deviation (ddof 1).
- Wilcoxon: methods A and B are paired per (rater, set, image): the same rater's first-showing scores of
  the two versions of one image. scipy.stats.wilcoxon, two-sided, zero_method='wilcox' (zero differences
  dropped), method='auto': with ties (usual for 1-5 scores) an exhaustive sign-flip permutation for up to
  13 differences and the tie-corrected normal approximation (no continuity correction) above that;
  without ties the exact distribution up to 50.
  Significant: p < 0.05, not corrected for multiple comparisons (as in the paper).
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import Path

ALL = "all"  # the pooled "data set"
ALPHA = 0.05


def mean_ci(scores: list[float], confidence: float = 0.95) -> dict:
    """{n, mean, std, ci_low, ci_high} with a Student-t interval (nan where n < 2)."""
    from scipy import stats

    n = len(scores)
    if n == 0:
        return {"n": 0, "mean": math.nan, "std": math.nan, "ci_low": math.nan, "ci_high": math.nan}
    mean = sum(scores) / n
    if n < 2:
        return {"n": n, "mean": mean, "std": math.nan, "ci_low": math.nan, "ci_high": math.nan}
    std = math.sqrt(sum((s - mean) ** 2 for s in scores) / (n - 1))
    half = stats.t.ppf(0.5 + confidence / 2, n - 1) * std / math.sqrt(n)
    return {"n": n, "mean": mean, "std": std, "ci_low": mean - half, "ci_high": mean + half}


def _test_first(ratings: list[dict]) -> list[dict]:
    return [r for r in ratings if r["phase"] == "test" and r["showing"] == 1]


def datasets_of(ratings: list[dict]) -> list[str]:
    return sorted({r["dataset"] for r in _test_first(ratings)})


def mos_table(ratings: list[dict], methods: list[str]) -> dict[str, dict[str, dict]]:
    """{dataset (and "all"): {method: mean_ci(...)}} over first showings of test items."""
    scores: dict[tuple[str, str], list[int]] = defaultdict(list)
    for r in _test_first(ratings):
        scores[r["dataset"], r["method"]].append(r["score"])
        scores[ALL, r["method"]].append(r["score"])
    sets = datasets_of(ratings)
    sets = sets + [ALL] if len(sets) > 1 else sets
    return {d: {m: mean_ci(scores[d, m]) for m in methods} for d in sets}


def score_counts(ratings: list[dict], methods: list[str], dataset: str = ALL) -> dict[str, list[int]]:
    """{method: [count of 1s, ..., count of 5s]} over first showings (of one set, or all)."""
    counts = {m: [0] * 5 for m in methods}
    for r in _test_first(ratings):
        if dataset in (ALL, r["dataset"]) and r["method"] in counts:
            counts[r["method"]][r["score"] - 1] += 1
    return counts


def paired_scores(ratings: list[dict], a: str, b: str, dataset: str = ALL) -> list[tuple[int, int]]:
    """[(score of a, score of b)] for each (rater, set, image) where both were rated (first showing)."""
    by_key: dict[tuple, dict[str, int]] = defaultdict(dict)
    for r in _test_first(ratings):
        if dataset in (ALL, r["dataset"]):
            by_key[r["rater"], r["dataset"], r["stem"]][r["method"]] = r["score"]
    return [(v[a], v[b]) for _, v in sorted(by_key.items()) if a in v and b in v]


def wilcoxon(pairs: list[tuple[int, int]]) -> dict:
    """Two-sided Wilcoxon signed-rank test of paired scores: {n, nonzero, mean_diff, statistic, pvalue}.
    With no non-zero difference there is nothing to test: p = 1."""
    from scipy import stats

    diffs = [a - b for a, b in pairs]
    nonzero = sum(d != 0 for d in diffs)
    out = {"n": len(diffs), "nonzero": nonzero, "mean_diff": sum(diffs) / len(diffs) if diffs else math.nan}
    if nonzero == 0:
        return out | {"statistic": math.nan, "pvalue": 1.0}
    res = stats.wilcoxon(diffs, zero_method="wilcox", alternative="two-sided")
    return out | {"statistic": float(res.statistic), "pvalue": float(res.pvalue)}


def wilcoxon_matrix(
    ratings: list[dict], methods: list[str], dataset: str = ALL
) -> dict[str, dict[str, dict]]:
    """{a: {b: wilcoxon(a vs b)}} for every ordered pair of different methods (symmetric p-values)."""
    return {
        a: {b: wilcoxon(paired_scores(ratings, a, b, dataset)) for b in methods if b != a} for a in methods
    }


def calibration_check(ratings: list[dict]) -> dict[int, dict]:
    """Per rater: how often the low anchor (nearest-neighbour) got 1 and the high anchor (HR) got 5."""
    out: dict[int, dict] = {}
    for r in ratings:
        if r["phase"] != "calibration":
            continue
        c = out.setdefault(r["rater"], {"low_n": 0, "low_hits": 0, "high_n": 0, "high_hits": 0})
        key = "low" if r["anchor"] == 1 else "high"
        c[f"{key}_n"] += 1
        c[f"{key}_hits"] += r["score"] == r["anchor"]
    for c in out.values():
        c["low_rate"] = c["low_hits"] / c["low_n"] if c["low_n"] else math.nan
        c["high_rate"] = c["high_hits"] / c["high_n"] if c["high_n"] else math.nan
    return out


def retest_pairs(ratings: list[dict]) -> dict[int, list[tuple[int, int]]]:
    """{rater: [(first score, second score)]} for test items a rater rated twice."""
    by_item: dict[tuple, dict[int, int]] = defaultdict(dict)
    for r in ratings:
        if r["phase"] == "test":
            by_item[r["rater"], r["method"], r["dataset"], r["stem"]][r["showing"]] = r["score"]
    out: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for (rater, *_), shows in sorted(by_item.items()):
        if 1 in shows and 2 in shows:
            out[rater].append((shows[1], shows[2]))
    return dict(out)


def agreement(pairs: list[tuple[int, int]]) -> dict:
    """{n, exact (share equal), within_one (share |diff| <= 1), mean_abs_diff, spearman (nan: undefined)}."""
    from scipy import stats

    n = len(pairs)
    if n == 0:
        return {
            "n": 0,
            "exact": math.nan,
            "within_one": math.nan,
            "mean_abs_diff": math.nan,
            "spearman": math.nan,
        }
    diffs = [abs(a - b) for a, b in pairs]
    first, second = zip(*pairs, strict=True)
    rho = math.nan
    if n >= 3 and len(set(first)) > 1 and len(set(second)) > 1:
        rho = float(stats.spearmanr(first, second).statistic)
    return {
        "n": n, "exact": sum(d == 0 for d in diffs) / n, "within_one": sum(d <= 1 for d in diffs) / n,
        "mean_abs_diff": sum(diffs) / n, "spearman": rho,
    }  # fmt: skip


def distribution_figure(ratings: list[dict], methods: list[str], path: str | Path) -> None:
    """The paper's Figure 5: per set, a column per method coloured by the share of each score 1-5, with the
    MOS as a red marker."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    sets = datasets_of(ratings) or [ALL]
    fig, axes = plt.subplots(
        1, len(sets), figsize=(1.0 + 0.75 * len(methods) * len(sets) + 1.2, 3.6), squeeze=False, sharey=True
    )
    image = None
    for ax, dataset in zip(axes[0], sets, strict=True):
        counts = score_counts(ratings, methods, dataset if len(sets) > 1 else ALL)
        total = np.array([max(1, sum(counts[m])) for m in methods], dtype=float)
        share = np.array([counts[m] for m in methods], dtype=float).T / total  # (5, methods)
        image = ax.imshow(share, origin="lower", cmap="Blues", vmin=0, vmax=1, aspect="auto",
                          extent=(-0.5, len(methods) - 0.5, 0.5, 5.5))  # fmt: skip
        for j, m in enumerate(methods):
            n = sum(counts[m])
            if n:
                mos = sum((i + 1) * c for i, c in enumerate(counts[m])) / n
                ax.plot([j], [mos], marker="o", color="red", markersize=6)
        ax.set_xticks(range(len(methods)), methods, rotation=45, ha="right")
        ax.set_yticks(range(1, 6))
        n_per = int(max(sum(c) for c in counts.values())) if counts else 0
        ax.set_title(f"{dataset or 'images'} (up to {n_per} ratings per method)", fontsize=9)
    axes[0][0].set_ylabel("score")
    fig.colorbar(image, ax=axes[0].tolist(), label="share of ratings", fraction=0.05)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)


def _fmt(x: float, digits: int = 2) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def summarize(ratings: list[dict], methods: list[str]) -> dict:
    """Every figure of the report as plain data (written as report.json)."""
    sets = datasets_of(ratings)
    wil_sets = sets + [ALL] if len(sets) > 1 else sets
    per_rater = retest_pairs(ratings)
    all_pairs = [p for pairs in per_rater.values() for p in pairs]
    return {
        "methods": methods,
        "ratings": len(ratings),
        "raters": len({r["rater"] for r in ratings}),
        "mos": mos_table(ratings, methods),
        "wilcoxon": {d: wilcoxon_matrix(ratings, methods, d if d else ALL) for d in wil_sets},
        "calibration": calibration_check(ratings),
        "retest": {"all": agreement(all_pairs), "per_rater": {r: agreement(p) for r, p in per_rater.items()}},
    }


def format_markdown(summary: dict) -> str:
    methods = summary["methods"]
    lines = [f"# MOS report\n\n{summary['ratings']} ratings from {summary['raters']} raters.\n"]
    lines.append("## MOS per method (test items, first showing; 95% CI, Student t)\n")
    for dataset, table in summary["mos"].items():
        lines += [f"### {dataset or 'images'}\n", "| method | n | MOS | 95% CI |", "|---|---:|---:|---|"]
        for m in methods:
            s = table[m]
            lines.append(
                f"| {m} | {s['n']} | {_fmt(s['mean'])} | [{_fmt(s['ci_low'])}, {_fmt(s['ci_high'])}] |"
            )
        lines.append("")
    lines.append(
        "## Wilcoxon signed-rank tests (two-sided; pairs: same rater, same image; p-values, * p < 0.05)\n\n"
        "Cells: p-value of row vs column (* p < 0.05), then (mean score difference row - column over the "
        "pairs, number of pairs).\n"
    )
    for dataset, matrix in summary["wilcoxon"].items():
        lines += [
            f"### {dataset or 'images'}\n",
            "| | " + " | ".join(methods) + " |",
            "|---" * (len(methods) + 1) + "|",
        ]
        for a in methods:
            cells = []
            for b in methods:
                if a == b:
                    cells.append("")
                    continue
                w = matrix[a][b]
                star = "*" if w["pvalue"] < ALPHA else ""
                diff = f"{w['mean_diff']:+.2f}, n={w['n']}"
                cells.append(f"{w['pvalue']:.2g}{star} ({diff})" if w["n"] else "-")
            lines.append(f"| {a} | " + " | ".join(cells) + " |")
        lines.append("")
    lines += [
        "## Calibration check (low anchor: nearest neighbour, expected 1; high anchor: HR, expected 5)\n",
        "| rater | low anchor scored 1 | high anchor scored 5 |",
        "|---|---|---|",
    ]
    for rater, c in sorted(summary["calibration"].items()):
        lines.append(
            f"| {rater} | {c['low_hits']}/{c['low_n']} ({_fmt(100 * c['low_rate'], 0)}%) "
            f"| {c['high_hits']}/{c['high_n']} ({_fmt(100 * c['high_rate'], 0)}%) |"
        )
    rt = summary["retest"]
    lines += [
        "\n## Test-retest agreement (items shown twice to the same rater)\n",
        "| rater | pairs | identical | within 1 | mean abs. difference | Spearman |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for rater, a in [*sorted(rt["per_rater"].items()), ("all", rt["all"])]:
        lines.append(
            f"| {rater} | {a['n']} | {_fmt(a['exact'])} | {_fmt(a['within_one'])} "
            f"| {_fmt(a['mean_abs_diff'])} | {_fmt(a['spearman'])} |"
        )
    lines.append("\n![score distribution](mos_distribution.png)\n")
    return "\n".join(lines)


def write_report(study: str | Path, out_dir: str | Path) -> dict[str, Path]:
    """report.md, report.json and mos_distribution.png for a study, in `out_dir` (created)."""
    from .db import all_ratings, get_meta, open_study

    with open_study(study) as conn:
        methods = get_meta(conn)["methods"]
        ratings = all_ratings(conn)
    if not any(r["phase"] == "test" for r in ratings):
        raise ValueError(f"{study} has no test ratings yet: nothing to report")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = summarize(ratings, methods)
    paths = {
        "markdown": out_dir / "report.md",
        "json": out_dir / "report.json",
        "figure": out_dir / "mos_distribution.png",
    }
    paths["markdown"].write_text(format_markdown(summary))
    paths["json"].write_text(json.dumps(_plain(summary), indent=2, allow_nan=False) + "\n")
    distribution_figure(ratings, methods, paths["figure"])
    return paths


def _plain(obj):
    """NaN -> None (null in JSON), keys -> str."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, float) and math.isnan(obj):
        return None
    return obj
