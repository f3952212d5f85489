"""Hugging Face Hub model folders: export (tiny and shipped models), load from a folder and from hf:// through
the real huggingface_hub and a cache laid out as it lays one out (offline), clear errors for corrupt or
mismatched folders, and what `srgan push` uploads (huggingface_hub's HfApi replaced: no network here)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from huggingface_hub import ModelCard
from PIL import Image
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from srgan import hub
from srgan.benchmark import model_fingerprint, model_label
from srgan.checkpoint import save_checkpoint, save_generator
from srgan.cli import main
from srgan.models import Generator
from srgan.zoo import export_hub_folder, load_model

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "docs" / "results" / "benchmark" / "results.json"


def tiny_checkpoint(path: Path, channels: int = 8) -> Generator:
    g = Generator(num_blocks=1, channels=channels)
    with torch.no_grad():  # batch-norm statistics that are not the defaults
        g.train()(torch.rand(2, 3, 8, 8))
    save_checkpoint(path, {"generator": g.state_dict(), "generator_kwargs": g.kwargs, "step": 12,
                           "config": {"preset": "srgan-mse"}})  # fmt: skip
    return g.eval()


def tiny_folder(tmp_path: Path, name: str = "tiny") -> tuple[Path, Generator]:
    g = tiny_checkpoint(tmp_path / f"{name}.pt")
    return export_hub_folder(tmp_path / f"{name}.pt", tmp_path / name), g


def one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, err
    return lines[0]


def test_export_a_checkpoint_as_a_hub_folder_and_load_it(tmp_path, capsys):
    g = tiny_checkpoint(tmp_path / "last.pt")
    out = tmp_path / "hub"
    assert main(["export", str(tmp_path / "last.pt"), "--hub-dir", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(hub.HUB_FILES)
    with safe_open(str(out / "model.safetensors"), framework="pt") as f:
        meta = f.metadata()
    assert meta["step"] == "12" and meta["preset"] == "srgan-mse" and meta["format"] == "srgan-generator"
    config = json.loads((out / "config.json").read_text())
    assert config["library_name"] == "srgan" and config["kwargs"] == g.kwargs and config["scale"] == 4
    assert config["variant"] == "srgan-mse" and config["arch"] == "srresnet"
    assert config["recipe"]["steps"] == 12 and config["recipe"]["content_loss"] == "mse"
    assert config["recipe"]["adversarial"] is True and config["parameters"] == sum(
        p.numel() for p in g.parameters()
    )
    card = ModelCard.load(out / "README.md")  # the Hub's own parser of the front matter
    assert card.data.library_name == "srgan" and card.data.pipeline_tag == "image-to-image"
    assert {"super-resolution", "srgan"} <= set(card.data.tags) and card.data.license == "mit"
    assert card.text.startswith("# last") and "hf://ORG/REPO" in card.text
    x = torch.rand(1, 3, 9, 7)
    with torch.no_grad():
        assert torch.equal(load_model(out)(x), g(x))
    assert main(["export", str(tmp_path / "last.pt"), "--hub-dir", str(out)]) == 2  # never overwrites
    assert "--force" in one_error_line(capsys.readouterr().err)
    assert main(["export", str(tmp_path / "last.pt"), "--hub-dir", str(out), "--force"]) == 0
    # a folder is a model everywhere: upscale, and export back to a release file
    Image.new("RGB", (12, 10), (200, 30, 90)).save(tmp_path / "in.png")
    assert main(["upscale", str(tmp_path / "in.png"), "-o", str(tmp_path / "up"), "--model", str(out)]) == 0
    assert Image.open(tmp_path / "up" / "in.png").size == (48, 40)
    assert main(["export", str(out), "-o", str(tmp_path / "back.safetensors")]) == 0
    back = load_file(str(tmp_path / "back.safetensors"))
    assert all(torch.equal(back[k], v) for k, v in load_file(str(out / "model.safetensors")).items())
    assert model_label(str(out)) == "hub" and model_fingerprint(str(out)).startswith("file-")
    assert main(["export", str(out)]) == 2 and "one of -o" in one_error_line(capsys.readouterr().err)


def test_shipped_model_folder_keeps_its_weights_metadata_card_and_benchmark_figures(tmp_path, capsys):
    out = tmp_path / "srgan-mse"
    assert main(["export", "srgan-mse", "--hub-dir", str(out), "--results", str(RESULTS)]) == 0
    shipped = REPO / "src" / "srgan" / "weights" / "srgan-mse.safetensors"
    with safe_open(str(shipped), framework="pt") as a, safe_open(str(out / "model.safetensors"), "pt") as b:
        assert a.metadata() == b.metadata()  # float16 stays float16, provenance kept
        assert all(torch.equal(a.get_tensor(k), b.get_tensor(k)) for k in a.keys()) and a.keys() == b.keys()
    card = ModelCard.load(out / "README.md")
    assert card.data.datasets and (REPO / "src/srgan/weights/srgan-mse.md").read_text()[200:600] in card.text
    figures = json.loads(RESULTS.read_text())["srgan-mse"]
    got = {(r.dataset_type, r.metric_name): r.metric_value for r in card.data.eval_results}
    assert got[("Set5", hub.METRICS["psnr_paper"][1])] == round(figures["Set5"]["mean"]["psnr_paper"], 2)
    assert got[("BSD100", hub.METRICS["lpips_alex"][1])] == round(figures["BSD100"]["mean"]["lpips_alex"], 3)
    assert {d for d, _ in got} == {"Set5", "Set14", "BSD100"} and len(got) == 18
    config = json.loads((out / "config.json").read_text())
    assert config["dtype"] == "float16" and config["recipe"]["steps"] == 1000
    # exported again from the folder: the same card, not a second usage section
    again = (export_hub_folder(out, tmp_path / "again", results=RESULTS) / "README.md").read_text()
    assert again.count(hub.USAGE_START) == 1
    assert again.split(hub.USAGE_END)[1] == card.text.split(hub.USAGE_END)[1]
    assert main(["export", "srgan-mse", "--hub-dir", str(tmp_path / "x"), "--results", str(tmp_path)]) == 2
    capsys.readouterr()
    no_entry = tmp_path / "r.json"
    no_entry.write_text(json.dumps({"bicubic": {}}))
    with pytest.raises(ValueError, match="no results for 'srgan-mse'"):
        export_hub_folder("srgan-mse", tmp_path / "y", results=no_entry)


def test_corrupt_or_mismatched_folders_get_clear_errors(tmp_path, capsys):
    good, g = tiny_folder(tmp_path)
    Image.new("RGB", (8, 8)).save(tmp_path / "in.png")

    def broken(name: str, change) -> Path:
        folder = tmp_path / name
        shutil.copytree(good, folder)
        change(folder)
        return folder

    config = json.loads((good / "config.json").read_text())
    wide = Generator(num_blocks=1, channels=16)

    def other_kwargs(f):  # config.json of another generator than the weights
        (f / "config.json").write_text(json.dumps(config | {"kwargs": wide.kwargs}))

    def wrong_shapes(f):  # weights and their own metadata disagree in shape; config agrees with the metadata
        save_file({k: v.contiguous() for k, v in wide.state_dict().items()}, str(f / "model.safetensors"),
                  metadata={"kwargs": json.dumps(g.kwargs)})  # fmt: skip

    def write_config(text):
        return lambda f: (f / "config.json").write_text(text)

    cases = {
        broken("no-weights", lambda f: (f / "model.safetensors").unlink()): "missing model.safetensors",
        broken("no-config", lambda f: (f / "config.json").unlink()): "missing config.json",
        broken("bad-json", write_config("{not json")): "config.json: not JSON",
        broken("not-srgan", write_config('{"model_type": "bert"}')): "not an srgan",
        broken("scale", write_config(json.dumps(config | {"scale": 2}))): "scale 2",
        broken("mixed", other_kwargs): "the folder is mixed up",
        broken("shapes", wrong_shapes): "do not fit",
        broken("cut", lambda f: (f / "model.safetensors").write_bytes(b"\x00" * 20)): "not a readable",
        tmp_path / "empty": "not a model folder",
    }
    (tmp_path / "empty").mkdir()
    for folder, needle in cases.items():
        with pytest.raises((ValueError, FileNotFoundError), match=needle):
            load_model(folder)
        argv = ["upscale", str(tmp_path / "in.png"), "-o", str(tmp_path / "up"), "--model", str(folder)]
        assert main(argv) == 2
        assert needle in one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "up").exists()
    # weights without srgan metadata (another tool's file) load by the config's kwargs
    plain = broken("plain", lambda f: save_file(load_file(str(good / "model.safetensors")),
                                                str(f / "model.safetensors")))  # fmt: skip
    x = torch.rand(1, 3, 5, 5)
    with torch.no_grad():
        assert torch.equal(load_model(plain)(x), g(x))


def _fake_hf_cache(root: Path, folder: Path, repo: str, revisions: dict[str, str]) -> None:
    """huggingface_hub's cache layout: models--ORG--REPO/refs/<ref> holds a commit hash, and
    snapshots/<hash>/ the files of that commit."""
    base = root / f"models--{repo.replace('/', '--')}"
    for ref, commit in revisions.items():
        (base / "refs").mkdir(parents=True, exist_ok=True)
        (base / "refs" / ref).write_text(commit)
        shutil.copytree(folder, base / "snapshots" / commit, dirs_exist_ok=True)


HF_SCRIPT = r"""
import contextlib, io, json, sys, torch
from srgan import load_model
from srgan.cli import main
x = torch.rand(1, 3, 6, 5, generator=torch.Generator().manual_seed(0))
out = {}
for spec in sys.argv[1:-1]:
    with torch.no_grad():
        out[spec] = load_model(spec)(x).sum().item()
err = io.StringIO()
with contextlib.redirect_stderr(err):
    out["rc"] = main(["upscale", sys.argv[-1], "-o", sys.argv[-1] + ".out", "--model", "hf://org/missing"])
out["stderr"] = err.getvalue()
print(json.dumps(out))
"""


def test_hf_models_resolve_offline_through_the_real_huggingface_hub_cache(tmp_path):
    first, g1 = tiny_folder(tmp_path, "first")
    second, g2 = tiny_folder(tmp_path, "second")
    cache = tmp_path / "hf-cache"
    main_commit, tag_commit = "a" * 40, "b" * 40
    _fake_hf_cache(cache, first, "org/tiny", {"main": main_commit})
    _fake_hf_cache(cache, second, "org/tiny", {"v1": tag_commit})
    Image.new("RGB", (6, 6)).save(tmp_path / "in.png")
    env = {**os.environ, "HF_HUB_CACHE": str(cache), "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO / "src"),
           "OMP_NUM_THREADS": "1"}  # fmt: skip
    specs = ["hf://org/tiny", "hf://org/tiny@v1", f"hf://org/tiny@{main_commit}"]
    run = subprocess.run([sys.executable, "-c", HF_SCRIPT, *specs, str(tmp_path / "in.png")], env=env,
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert run.returncode == 0, run.stderr
    got = json.loads(run.stdout.splitlines()[-1])
    x = torch.rand(1, 3, 6, 5, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        want1, want2 = g1(x).sum().item(), g2(x).sum().item()
    assert got[specs[0]] == pytest.approx(want1, abs=1e-4) and got[specs[2]] == pytest.approx(want1, abs=1e-4)
    assert got[specs[1]] == pytest.approx(want2, abs=1e-4) and want1 != pytest.approx(want2, abs=1e-3)
    assert got["rc"] == 2
    line = one_error_line(got["stderr"])
    assert "hf://org/missing is not in the Hugging Face cache" in line and "HF_HUB_OFFLINE=1" in line
    assert "hf download org/missing" in line and str(cache) in line


def test_hf_specs_are_checked():
    assert hub.parse_hf("hf://org/repo") == ("org/repo", None)
    assert hub.parse_hf("hf://org/repo@refs/pr/1") == ("org/repo", "refs/pr/1")
    for bad in ("hf://org", "hf://org/repo/extra", "hf://org/repo@", "hf:///repo"):
        with pytest.raises(ValueError, match="expected hf://ORG/REPO"):
            hub.parse_hf(bad)


class FakeApi:
    """huggingface_hub.HfApi as `push` uses it, recording what would go to the Hub."""

    calls: list = []

    def __init__(self, token=None):
        self.token = token

    def create_repo(self, repo_id, **kwargs):
        FakeApi.calls.append(("create_repo", repo_id, kwargs))

    def upload_folder(self, *, folder_path, **kwargs):
        files = {p.name: p.read_bytes() for p in Path(folder_path).iterdir()}
        FakeApi.calls.append(("upload_folder", files, kwargs))
        return type("Commit", (), {"commit_url": f"https://hub.invalid/{kwargs['repo_id']}/commit/1"})()


def test_push_uploads_a_checked_folder(tmp_path, monkeypatch, capsys):
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    FakeApi.calls = []
    folder, g = tiny_folder(tmp_path)
    assert main(["push", str(folder), "me/tiny", "--private"]) == 0
    assert capsys.readouterr().out.strip() == "https://hub.invalid/me/tiny/commit/1"
    (_, repo, create), (_, files, upload) = FakeApi.calls
    assert repo == "me/tiny" and create == {"repo_type": "model", "private": True, "exist_ok": True}
    assert sorted(files) == sorted(hub.HUB_FILES) and upload["allow_patterns"] == list(hub.HUB_FILES)
    assert files["model.safetensors"] == (folder / "model.safetensors").read_bytes()
    # anything else is exported to a folder first: a checkpoint here
    FakeApi.calls = []
    assert main(["push", str(tmp_path / "tiny.pt"), "me/tiny2"]) == 0
    files = FakeApi.calls[1][1]
    assert sorted(files) == sorted(hub.HUB_FILES) and b"library_name" in files["README.md"]
    capsys.readouterr()
    # refused before any upload: a folder without its card, a corrupt one, a bad repository id
    FakeApi.calls = []
    (folder / "README.md").unlink()
    assert main(["push", str(folder), "me/tiny"]) == 2
    assert "missing README.md" in one_error_line(capsys.readouterr().err)
    (folder / "config.json").write_text("[]")
    assert main(["push", str(folder), "me/tiny"]) == 2
    assert "not an srgan model config" in one_error_line(capsys.readouterr().err)
    assert main(["push", str(tmp_path / "tiny.pt"), "not a repo"]) == 2
    assert "ORG/REPO" in one_error_line(capsys.readouterr().err)
    assert FakeApi.calls == []


def test_export_hub_folder_refuses_a_file_in_the_way(tmp_path):
    tiny_checkpoint(tmp_path / "g.pt")
    (tmp_path / "taken").write_text("x")
    with pytest.raises(FileExistsError, match="not a folder"):
        export_hub_folder(tmp_path / "g.pt", tmp_path / "taken")
    save_generator(tmp_path / "g.safetensors", Generator(num_blocks=1, channels=8))
    folder = export_hub_folder(tmp_path / "g.safetensors", tmp_path / "from-release")
    assert json.loads((folder / "config.json").read_text())["recipe"] == {"preset": None}
