"""scripts/srresnet_recipes.py and scripts/recipe_curves.py: the table and figure made from stored scores."""

import importlib.util
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def load_script(name: str):
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_srresnet_recipes_table_and_figure(tmp_path):
    script = load_script("srresnet_recipes")
    start = {"Set5": 31.45, "Set14": 28.12}
    results = {"models": {"srresnet": start}, "runs": {
        "2e-4 raw": {"0": start, "400": {"Set5": 31.16, "Set14": 27.94},
                     "800": {"Set5": 31.37, "Set14": 28.03}},
        "2e-4 ema": {"0": start, "400": {"Set5": 31.46, "Set14": 28.13}},
    }}  # fmt: skip
    lines = script.table(results, "srresnet").splitlines()
    assert lines[0] == "| recipe | weights | step 400 | step 800 |"
    assert lines[2] == "| 2e-4 | raw | 31.16 / 27.94 | 31.37 / 28.03 |"
    assert lines[3] == "| 2e-4 | ema | 31.46 / 28.13 |  |"  # a step not scored is an empty cell
    assert "31.45 / 28.12 dB" in lines[-1]
    script.plot(results, "srresnet", str(tmp_path / "f.png"))
    assert (tmp_path / "f.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_recipe_curves_table_rows_per_step():
    script = load_script("recipe_curves")
    keys = [k for k, _, _ in script.COLUMNS]
    row = dict.fromkeys(keys, 1.0)
    results = {"models": {"srgan": row, "realism-0.5": row}, "runs": {"x ema": {"1000": row, "250": row}}}
    lines = script.table(results).splitlines()
    assert lines[2].startswith("| shipped `srgan` |") and lines[3].startswith("| `--realism 0.5` |")
    assert [line.split(" | ")[1] for line in lines[4:]] == ["250", "1,000"]  # in step order
