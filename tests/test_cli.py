import torch
from safetensors import safe_open

from srgan.checkpoint import load_model, save_checkpoint
from srgan.cli import main
from srgan.models import Generator


def test_params_prints_the_papers_counts(capsys):
    assert main(["params"]) == 0
    out = capsys.readouterr().out
    assert "1,549,462" in out and "23,565,505" in out


def test_export_checkpoint_to_release_file(tmp_path, capsys):
    g = Generator(num_blocks=1, channels=8)
    ckpt = tmp_path / "last.pt"
    save_checkpoint(ckpt, {"generator": g.state_dict(), "generator_kwargs": g.kwargs, "step": 7,
                           "config": {"preset": "srresnet-mse"}})  # fmt: skip
    out = tmp_path / "g.safetensors"
    assert main(["export", str(ckpt), "-o", str(out)]) == 0
    with safe_open(str(out), framework="pt") as f:
        meta = f.metadata()
    assert meta["step"] == "7" and meta["preset"] == "srresnet-mse" and meta["format"] == "srgan-generator"
    x = torch.rand(1, 3, 6, 6)
    with torch.no_grad():
        assert torch.equal(load_model(out)(x), g.eval()(x))
    before = out.read_bytes()
    assert main(["export", str(ckpt), "-o", str(out)]) == 2  # never overwrites silently
    assert "--force" in capsys.readouterr().err and out.read_bytes() == before
    assert main(["export", str(tmp_path / "missing.pt"), "-o", str(tmp_path / "h.safetensors")]) == 2
