import os
import stat

import torch
from safetensors import safe_open

from srgan.checkpoint import save_checkpoint
from srgan.cli import main
from srgan.models import Generator
from srgan.zoo import load_model


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
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(out.stat().st_mode) == 0o666 & ~umask  # as open() would make it, not mkstemp's 0600
    x = torch.rand(1, 3, 6, 6)
    with torch.no_grad():
        assert torch.equal(load_model(out)(x), g.eval()(x))
    before = out.read_bytes()
    assert main(["export", str(ckpt), "-o", str(out)]) == 2  # never overwrites silently
    assert "--force" in capsys.readouterr().err and out.read_bytes() == before
    assert main(["export", str(tmp_path / "missing.pt"), "-o", str(tmp_path / "h.safetensors")]) == 2


def test_export_half_stores_float16_and_loads_as_float32(tmp_path, capsys):
    g = Generator(num_blocks=1, channels=8)
    with torch.no_grad():  # non-trivial batch-norm statistics, so the buffers are checked too
        g.train()(torch.rand(2, 3, 6, 6))
    ckpt = tmp_path / "last.pt"
    save_checkpoint(ckpt, {"generator": g.state_dict(), "generator_kwargs": g.kwargs, "step": 3,
                           "config": {"preset": "srgan-mse"}})  # fmt: skip
    full, half = tmp_path / "full.safetensors", tmp_path / "half.safetensors"
    assert main(["export", str(ckpt), "-o", str(full)]) == 0
    assert main(["export", str(ckpt), "-o", str(half), "--half"]) == 0
    with safe_open(str(half), framework="pt") as f:
        assert f.metadata()["dtype"] == "float16"
        dtypes = {k: f.get_tensor(k).dtype for k in f.keys()}
    assert {d for k, d in dtypes.items() if "num_batches_tracked" not in k} == {torch.float16}
    assert {d for k, d in dtypes.items() if "num_batches_tracked" in k} == {torch.int64}
    assert half.stat().st_size < 0.6 * full.stat().st_size
    m_full, m_half = load_model(full), load_model(half)
    assert all(p.dtype == torch.float32 for p in m_half.state_dict().values() if p.is_floating_point())
    for (k, a), b in zip(m_full.state_dict().items(), m_half.state_dict().values(), strict=True):
        if a.is_floating_point():  # float16 rounding: relative 2^-11
            torch.testing.assert_close(b, a.to(torch.float16).float(), rtol=0, atol=0, msg=k)
    x = torch.rand(1, 3, 6, 6)
    with torch.no_grad():
        torch.testing.assert_close(m_half(x), m_full(x), rtol=0, atol=1e-2)
    assert main(["export", str(ckpt), "-o", str(tmp_path / "g.onnx"), "--half"]) == 2
    assert "--half is for safetensors" in capsys.readouterr().err
