"""`srgan benchmark`: every model on every data set once; SR images, per-image tables and the figures.

Layout of the output folder (the SR images are laid out so that `srgan mos create` can use them):

    OUT/sr/<model>/<set>/<image>.png     SR images (re-used on a re-run of the same weights unless force=True)
    OUT/sr/<model>/model.txt             the fingerprint of the weights that made them
    OUT/sr/HR/<set>/<image>.png          the ground truth as PNG (the MOS study's reference)
    OUT/results.csv                      one row per model, set and image: every metric
    OUT/results.json                     {model: {set: {"mean": {...}, "images": {image: {...}}}}}
    OUT/table.md                         Table 2 layout: methods as columns, PSNR / SSIM / LPIPS rows per set

Metrics: PSNR and SSIM under each evaluation protocol asked for (`srgan.protocols`: "default", "matlab",
"paper"), named `psnr_<protocol>` / `ssim_<protocol>`, and LPIPS (`lpips_alex`, `lpips_vgg`) on the whole
RGB image, both images rounded to uint8 first (the SR image is read back from its PNG).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from tqdm import tqdm

from .artefacts import aggregate as aggregate_artefacts
from .artefacts import measure as measure_artefacts
from .baselines import BASELINES
from .checkpoint import atomic_write
from .data import check_set_dirs, is_gray_file, list_pairs, load_pair
from .evaluate import make_upscaler
from .hub import is_hf
from .io import read_image, write_image
from .models import Generator
from .paper import PAPER_METHODS, PAPER_TABLE2
from .zoo import canonical_name, load_realism_model, model_name, weights_file

LPIPS_NETS = ("alex", "vgg")
METRIC_TITLES = {"psnr": "PSNR (dB)", "ssim": "SSIM", "lpips_alex": "LPIPS-Alex", "lpips_vgg": "LPIPS-VGG",
                 "grid": "grid (x HR)", "chroma": "chroma noise (x HR)",
                 "shift_max": "max colour shift"}  # fmt: skip


@dataclass(frozen=True)
class BenchImage:
    """One benchmark image: its set, name (file stem), HR and LR paths (LR None: made from HR)."""

    set_name: str
    name: str
    hr_path: Path
    lr_path: Path | None


ModelSpec = str | tuple[str, torch.nn.Module]  # a name / path, or (label, Generator)


def model_fingerprint(spec: ModelSpec) -> str:
    """What the SR images of `spec` depend on: "nearest" / "bicubic", else a SHA-256 of the weights file
    (shipped name or path) or of the generator's state dict. Re-used SR images must carry the same one."""
    module = spec[1] if isinstance(spec, tuple) else spec
    if module in ("nearest", "bicubic"):
        return module
    digest = hashlib.sha256()
    if isinstance(module, torch.nn.Module):
        for key, value in sorted(module.state_dict().items()):
            digest.update(key.encode())
            digest.update(value.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
        return "state-" + digest.hexdigest()
    with open(weights_file(module), "rb") as f:  # a model folder's model.safetensors; hf:// from the cache
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return "file-" + digest.hexdigest()


BENCH_PRECISIONS = ("fp32", "bf16", "int8")


def _precision_tag(spec: ModelSpec, precision: str) -> str:
    """What else the SR images depend on: the precision (and for int8 the calibration format)."""
    if precision == "fp32" or spec in BASELINES:
        return ""
    if precision == "int8":  # and on the calibration in use: a new one makes the images again
        from .fast import prepare_for_inference
        from .int8 import CALIBRATION_VERSION, calibration_tag, find_calibration, weights_digest
        from .zoo import load_model

        module = spec[1] if isinstance(spec, tuple) else load_model(spec)
        fast = module if not isinstance(module, Generator) else prepare_for_inference(module.eval())
        found = find_calibration(weights_digest(fast))
        return f" int8-v{CALIBRATION_VERSION}-" + (calibration_tag(found[0]) if found else "none")
    return f" {precision}"


def model_label(spec: ModelSpec) -> str:
    """Folder / column name of a model spec: the name itself, a checkpoint path's stem, a model folder's
    name, an hf:// model's REPO, or the given label."""
    if isinstance(spec, tuple):
        return spec[0]
    path = Path(spec)
    if is_hf(spec) or path.is_dir():
        return model_name(spec)
    return path.stem if path.suffix in (".pt", ".safetensors") else spec


def metric_names(protocols: Sequence[str], lpips_nets: Sequence[str]) -> list[str]:
    names = [f"{m}_{p}" for p in protocols for m in ("psnr", "ssim")]
    return names + [f"lpips_{net}" for net in lpips_nets]


def collect_images(data_dirs: Sequence[str | Path], scale: int = 4) -> list[BenchImage]:
    """Every HR image of every set folder (HR/ and optionally LR_x{scale}/); set names must be distinct."""
    dirs = check_set_dirs(data_dirs)
    return [BenchImage(d.name, name, hr, lr) for d in dirs for name, hr, lr in list_pairs(d, scale)]


def _save_png(img: torch.Tensor, path: Path) -> None:
    atomic_write(path, lambda tmp: write_image(img, tmp, format="PNG"))


class _Scorer:
    """The metrics of one benchmark run; LPIPS networks are loaded once, on first use."""

    def __init__(
        self, protocols: Sequence[str], lpips_nets: Sequence[str], device: str | torch.device,
        artefacts: bool = True,
    ):  # fmt: skip
        from .protocols import PROTOCOLS

        unknown = [p for p in protocols if p not in PROTOCOLS]
        if unknown:
            raise ValueError(f"unknown protocol(s) {', '.join(unknown)}; choose from {', '.join(PROTOCOLS)}")
        bad_nets = [n for n in lpips_nets if n not in LPIPS_NETS]
        if bad_nets:
            choices = ", ".join(LPIPS_NETS)
            raise ValueError(f"unknown LPIPS net(s) {', '.join(bad_nets)}; choose from {choices}")
        self.protocols, self.lpips_nets, self.device = tuple(protocols), tuple(lpips_nets), device
        self.artefacts = artefacts
        self._lpips: dict[str, torch.nn.Module] = {}

    def lpips(self, net: str) -> torch.nn.Module:
        if net not in self._lpips:
            from .lpips import load_lpips

            self._lpips[net] = load_lpips(net, device=self.device)
        return self._lpips[net]

    def __call__(self, sr_img: torch.Tensor, hr_img: torch.Tensor, gray: bool, scale: int) -> dict:
        from .protocols import score

        row: dict[str, float] = {}
        for protocol in self.protocols:
            p, s = score(sr_img, hr_img, protocol=protocol, gray=gray, crop_border=scale)
            row[f"psnr_{protocol}"], row[f"ssim_{protocol}"] = float(p), float(s)
        for net in self.lpips_nets:
            with torch.no_grad():
                d = self.lpips(net)(sr_img[None].to(self.device), hr_img[None].to(self.device))
            row[f"lpips_{net}"] = float(d.reshape(-1)[0])
        if self.artefacts:
            row |= measure_artefacts(sr_img, hr_img, crop_border=scale, period=scale)
        return row


def benchmark(
    models: Sequence[ModelSpec],
    data_dirs: Sequence[str | Path],
    out_dir: str | Path,
    *,
    protocols: Sequence[str] = ("default", "paper"),
    lpips_nets: Sequence[str] = LPIPS_NETS,
    scale: int = 4,
    device: str | torch.device = "cpu",
    force: bool = False,
    progress: bool = True,
    realism: Sequence[float] = (),
    artefacts: bool = True,
    precisions: Sequence[str] = ("fp32",),
) -> dict[str, dict[str, dict[str, Any]]]:
    """Run every model on every set once, save the SR images, score them, write CSV / JSON / Markdown.

    models: "nearest", "bicubic", shipped names or checkpoint paths (see `srgan.evaluate.make_upscaler`), or
    (label, Generator) pairs (for example the realism control's interpolated generators).
    SR images already in OUT/sr are re-used (scored again, not re-made) unless `force`, or unless the model
    changed since they were made: OUT/sr/<model>/model.txt holds the weights' fingerprint
    (`model_fingerprint`), and a model whose fingerprint differs gets all of its images made again.
    realism: also the shipped srresnet and srgan interpolated at these values
    (`srgan.zoo.load_realism_model`), as models "realism-A".
    artefacts: also the `srgan.artefacts` measures (grid, chroma noise, colour shift).
    precisions: each generator model at each of these ("fp32", "bf16", "int8"; see `srgan.upscale`), labelled
        MODEL for fp32 and MODEL-PRECISION for the others (nearest / bicubic once, as they are; the realism
        models not in int8: they have no calibration).
    Returns {model label: {set: {"mean": {metric: value}, "images": {image: {metric: value}}}}}.
    """
    out_dir = Path(out_dir)
    models = [canonical_name(m) if isinstance(m, str) else m for m in models]  # srgan-vgg54 -> srgan
    models += [(f"realism-{a:g}", load_realism_model(a, device=device)) for a in realism]
    if not precisions or any(p not in BENCH_PRECISIONS for p in precisions):
        raise ValueError(f"precisions must be some of {', '.join(BENCH_PRECISIONS)}, got {list(precisions)}")
    if "int8" in precisions:
        from .int8 import check_int8_support

        check_int8_support(device)
    def at(m: ModelSpec) -> Sequence[str]:  # baselines once; realism mixes have no int8 calibration
        if m in BASELINES:
            return precisions[:1]
        if isinstance(m, tuple) and m[0].startswith("realism-"):
            return [p for p in precisions if p != "int8"] or ["fp32"]
        return precisions

    runs = [(m, p) for m in models for p in at(m)]
    models = [m for m, _ in runs]
    labels = [model_label(m) + ("" if p == "fp32" or m in BASELINES else f"-{p}") for m, p in runs]
    if len(set(labels)) != len(labels):
        raise ValueError(f"model names must be distinct, got {', '.join(labels)}")
    if "HR" in labels:
        raise ValueError("'HR' is reserved for the ground-truth folder OUT/sr/HR")
    images = collect_images(data_dirs, scale)
    scorer = _Scorer(protocols, lpips_nets, device, artefacts=artefacts)
    results: dict[str, dict[str, dict[str, Any]]] = {}
    bar = tqdm(total=len(models) * len(images), desc="benchmark", unit="img", disable=not progress)
    for (spec, precision), label in zip(runs, labels, strict=True):
        upscaler = None  # loaded only when an SR image has to be made
        per_set: dict[str, dict[str, Any]] = {}
        fingerprint = model_fingerprint(spec) + _precision_tag(spec, precision)
        stamp = out_dir / "sr" / label / "model.txt"
        remake = force or not stamp.exists() or stamp.read_text().strip() != fingerprint
        if remake and not force and any((out_dir / "sr" / label).glob("*/*.png")):
            bar.write(f"{label}: the model differs from the one that made {out_dir / 'sr' / label}: "
                      "making its SR images again", file=sys.stderr)  # fmt: skip
        for item in images:
            bar.set_postfix_str(f"{label} {item.set_name}/{item.name}")
            lr_img, hr_img = load_pair(item.hr_path, item.lr_path, scale)
            gray = is_gray_file(item.hr_path)
            hr_png = out_dir / "sr" / "HR" / item.set_name / f"{item.name}.png"
            if force or not hr_png.exists():
                _save_png(hr_img, hr_png)
            sr_png = out_dir / "sr" / label / item.set_name / f"{item.name}.png"
            if remake or not sr_png.exists():
                if upscaler is None:
                    module = spec[1] if isinstance(spec, tuple) else spec
                    upscaler = make_upscaler(module, scale=scale, device=device,
                                             precision=precision if module not in BASELINES else "fp32")
                sr_img = upscaler(lr_img.unsqueeze(0))[0]
                if sr_img.shape != hr_img.shape:
                    raise ValueError(f"{label} on {item.set_name}/{item.name}: SR is {tuple(sr_img.shape)} "
                                     f"but HR is {tuple(hr_img.shape)}")  # fmt: skip
                _save_png(sr_img, sr_png)
            sr_img = read_image(sr_png)
            if sr_img.shape != hr_img.shape:
                raise ValueError(f"{sr_png} is {tuple(sr_img.shape)}, HR is {tuple(hr_img.shape)}: "
                                 "a stale file from another run? Re-run with --force")  # fmt: skip
            entry = per_set.setdefault(item.set_name, {"mean": {}, "images": {}})
            entry["images"][item.name] = scorer(sr_img, hr_img, gray, scale)
            bar.update()
        if remake:  # every image of this model is now its own
            atomic_write(stamp, lambda tmp, fp=fingerprint: Path(tmp).write_text(fp + "\n"))
        for entry in per_set.values():
            rows = list(entry["images"].values())
            entry["mean"] = {k: math.fsum(r[k] for r in rows) / len(rows) for k in rows[0]}
            if "grid" in rows[0]:  # a set's artefact figures are not plain means (srgan.artefacts)
                entry["mean"] |= aggregate_artefacts(rows)
        results[label] = per_set
    bar.close()
    write_reports(results, out_dir, protocols=protocols, scale=scale)
    return results


def write_reports(
    results: dict[str, dict[str, dict[str, Any]]], out_dir: Path, *, protocols: Sequence[str], scale: int = 4
) -> None:
    """results.csv (per image), results.json and table.md into out_dir."""
    metrics = list(next(iter(next(iter(next(iter(results.values())).values()))["images"].values())))
    lines = io.StringIO()
    writer = csv.writer(lines, lineterminator="\n")
    writer.writerow(["model", "set", "image", *metrics])
    for label, per_set in results.items():
        for set_name, entry in per_set.items():
            for name, row in entry["images"].items():
                writer.writerow([label, set_name, name, *(f"{row[m]:.6f}" for m in metrics)])
    text_csv, text_json = lines.getvalue(), json.dumps(results, indent=1) + "\n"
    text_md = format_markdown(results, protocols=protocols, scale=scale)
    atomic_write(out_dir / "results.csv", lambda tmp: Path(tmp).write_text(text_csv))
    atomic_write(out_dir / "results.json", lambda tmp: Path(tmp).write_text(text_json))
    atomic_write(out_dir / "table.md", lambda tmp: Path(tmp).write_text(text_md))


def _paper_value(label: str, set_name: str, metric: str, scale: int) -> float | None:
    """The paper's Table 2 figure for (method, set, psnr|ssim), if it has one."""
    if scale != 4 or label not in PAPER_METHODS or metric not in ("psnr", "ssim"):
        return None
    pair = PAPER_TABLE2.get(set_name, {}).get(label)
    return None if pair is None else pair[0 if metric == "psnr" else 1]


def format_markdown(
    results: dict[str, dict[str, dict[str, Any]]], *, protocols: Sequence[str], scale: int = 4
) -> str:
    """One Table-2 style table per protocol: methods as columns, PSNR / SSIM (/ LPIPS) rows per set; the
    paper's own figure in brackets where it has one (its protocol is `paper`)."""
    labels = list(results)
    sets = list(dict.fromkeys(s for per_set in results.values() for s in per_set))
    measured = {k for per_set in results.values() for e in per_set.values() for k in e["mean"]}
    out = []
    for protocol in protocols:
        rows = [(f"psnr_{protocol}", "psnr"), (f"ssim_{protocol}", "ssim")]
        rows += [(k, k) for k in ("lpips_alex", "lpips_vgg", "grid", "chroma", "shift_max") if k in measured]
        out += [f"### x{scale}, protocol `{protocol}`", ""]
        out += ["| set | metric | " + " | ".join(labels) + " |", "|---|---|" + "---|" * len(labels)]
        for set_name in sets:
            for key, base in rows:
                digits = {"psnr": 2, "grid": 2, "chroma": 2, "shift_max": 2}.get(base, 4)
                cells = []
                for label in labels:
                    value = results[label].get(set_name, {}).get("mean", {}).get(key)
                    paper = _paper_value(label, set_name, base, scale)
                    cell = "-" if value is None else f"{value:.{digits}f}"
                    cells.append(cell + (f" [{paper:.{digits}f}]" if paper is not None else ""))
                out.append(f"| {set_name} | {METRIC_TITLES[base]} | " + " | ".join(cells) + " |")
        out.append("")
    out.append("[brackets]: Ledig et al. 2017, Table 2 (measured with the daala tools: protocol `paper`). "
               "LPIPS: lower is better, on the whole RGB image.")  # fmt: skip
    return "\n".join(out) + "\n"


# ----------------------------------------------------------------------------------------------- figures


def _font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def crop_figure(
    out_dir: str | Path,
    results: dict[str, dict[str, dict[str, Any]]],
    set_name: str,
    image: str,
    box: tuple[int, int, int],
    *,
    models: Sequence[str],
    protocol: str = "default",
    cell: int = 256,
) -> Image.Image:
    """Side-by-side HR-space crops like the paper's Figures 2 and 6: each model's SR and the HR, the region
    (x, y, size) in HR pixels, enlarged to `cell` pixels with nearest neighbour; PSNR / SSIM / LPIPS of the
    whole image under each. Reads the SR images that `benchmark` saved in OUT/sr."""
    out_dir = Path(out_dir)
    x, y, size = box
    tiles = []
    for label in [*models, "HR"]:
        path = out_dir / "sr" / label / set_name / f"{image}.png"
        with Image.open(path) as img:
            if x + size > img.width or y + size > img.height:
                raise ValueError(f"crop {box} is outside {path} ({img.width}x{img.height})")
            tile = img.convert("RGB").crop((x, y, x + size, y + size))
        caption = ""
        if label != "HR":
            m = results[label][set_name]["images"][image]
            parts = [f"{m[f'psnr_{protocol}']:.2f} dB", f"{m[f'ssim_{protocol}']:.4f}"]
            parts += [f"{m[k]:.3f}" for k in ("lpips_alex",) if k in m]
            caption = " / ".join(parts)
        tiles.append((label, tile, caption))
    return tile_figure(tiles, cell=cell)


def tile_figure(tiles: Sequence[tuple[str, Image.Image, str]], *, cell: int = 256) -> Image.Image:
    """Images side by side, each enlarged to `cell` x `cell` pixels with nearest neighbour, its label and a
    caption under it: the layout of `crop_figure` and scripts/compare_figure.py."""
    from PIL import ImageDraw

    font, small = _font(18), _font(14)
    pad, text_h = 8, 46
    canvas = Image.new("RGB", (len(tiles) * (cell + pad) + pad, cell + text_h + 2 * pad), "white")
    draw = ImageDraw.Draw(canvas)
    for i, (label, tile, caption) in enumerate(tiles):
        left = pad + i * (cell + pad)
        canvas.paste(tile.resize((cell, cell), Image.NEAREST), (left, pad))
        draw.text((left, cell + pad + 2), label, fill="black", font=font)
        if caption:
            draw.text((left, cell + pad + 24), caption, fill="black", font=small)
    return canvas


def perception_distortion_figure(
    results: dict[str, dict[str, dict[str, Any]]],
    set_name: str,
    path: str | Path,
    *,
    protocol: str = "default",
    lpips_net: str = "alex",
    curve: Sequence[str] = (),
) -> None:
    """PSNR against LPIPS on one set, one point per model (the perception-distortion plane); the models in
    `curve` (for example the realism control's steps) are joined by a line in the order given."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    key_p, key_l = f"psnr_{protocol}", f"lpips_{lpips_net}"
    fig, ax = plt.subplots(figsize=(6, 4.5), dpi=120)
    points = {m: r[set_name]["mean"] for m, r in results.items() if set_name in r}
    if curve:
        xs = [points[m][key_p] for m in curve if m in points]
        ys = [points[m][key_l] for m in curve if m in points]
        ax.plot(xs, ys, "-", color="0.6", zorder=1)
    for mean in points.values():
        ax.scatter(mean[key_p], mean[key_l], s=36, zorder=2)
    ax.autoscale_view()
    placed: list[tuple[float, float, float, float]] = []
    for label, mean in points.items():
        xy = (mean[key_p], mean[key_l])
        dx, dy, ha = _free_label_spot(ax.transData.transform(xy), label, placed, fig.dpi)
        ax.annotate(label, xy, textcoords="offset points", xytext=(dx, dy), ha=ha, fontsize=8)
    ax.set_xlabel(f"PSNR (dB, Y, protocol {protocol}) - higher is less distortion")
    ax.set_ylabel(f"LPIPS-{lpips_net.capitalize()} - lower is more perceptually similar")
    ax.set_title(f"Perception-distortion plane, {set_name} x4")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(buf.getvalue()))


def _free_label_spot(
    anchor, label: str, placed: list[tuple[float, float, float, float]], dpi: float, fontsize: float = 8
) -> tuple[int, int, str]:
    """An offset (points) and alignment for a point's label that does not cover the labels placed so far:
    right-above, right-below, left-above, left-below, else right-above. Appends the label's box (display
    pixels, a width estimate) to `placed`."""
    px, py = anchor
    scale = dpi / 72
    w, h = 0.6 * fontsize * len(label) * scale, fontsize * scale
    candidates = []
    for dx, dy, ha in [(5, 4, "left"), (5, -11, "left"), (-5, 4, "right"), (-5, -11, "right")]:
        x0 = px + dx * scale - (w if ha == "right" else 0)
        candidates.append(((dx, dy, ha), (x0, py + dy * scale, x0 + w, py + dy * scale + h)))

    def free(box: tuple[float, float, float, float]) -> bool:
        return not any(box[0] < b[2] and b[0] < box[2] and box[1] < b[3] and b[1] < box[3] for b in placed)

    spot, box = next((c for c in candidates if free(c[1])), candidates[0])
    placed.append(box)
    return spot


def parse_crop(spec: str) -> tuple[str, str, tuple[int, int, int]]:
    """'SET/IMAGE:X,Y,SIZE' -> (set, image, (x, y, size)), HR pixel coordinates."""
    try:
        where, box = spec.rsplit(":", 1)
        set_name, image = where.split("/", 1)
        x, y, size = (int(v) for v in box.split(","))
    except ValueError:
        example = "Set14/comic:100,40,64"
        raise ValueError(f"--crop {spec!r}: expected SET/IMAGE:X,Y,SIZE, e.g. {example}") from None
    if size <= 0 or x < 0 or y < 0:
        raise ValueError(f"--crop {spec!r}: x, y must be >= 0 and size > 0")
    return set_name, image, (x, y, size)
