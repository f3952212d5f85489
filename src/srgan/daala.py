"""The daala tools the paper scored with, in NumPy: png2y4m's RGB -> Y'CbCr 4:2:0, dump_psnr, dump_ssim.

Ledig et al. computed Table 2 with the daala tools (github.com/xiph/daala, commit 8d03668): each PNG was
converted with `tools/png2y4m.c` (defaults: BT.709 limited range, 4:2:0 chroma, triangular dither from the
fixed-seed KISS99 generator of `tools/kiss99.c`, each luma value chosen to minimise the RGB reconstruction
error given the quantised chroma), then scored with `tools/dump_psnr.c` and `tools/dump_ssim.c` on the Y'
plane. This module reimplements those three steps bit for bit on the 8-bit data path (integer arithmetic
where the C uses integers, the C's order of floating-point operations where it does not), vectorised:

- `kiss99_stream(n)`: the first n outputs of `kiss99_rand` after `kiss99_srand(ctx, NULL, 0)`;
- `png2y4m_luma(rgb)`: the Y' plane png2y4m writes for one 8-bit RGB image (uint8, (H, W));
- `dump_psnr(y1, y2)`, `dump_ssim(y1, y2)`: the Y' figures the tools print for one frame (SSIM raw, as
  `dump_ssim -r`, not the default dB).

The C source is GPL/BSD licensed and is not copied here; names of the C functions are kept so that the port
can be read side by side with it. Versions read: png2y4m.c at 1b01db4 and 4da3c8e (the same conversion),
dump_ssim.c at 0b5ce2f (its 8-bit path), dump_psnr.c at 3465394, kiss99.c at 2b7e22d; commit 8d03668 itself
was not available, but the port reproduces the paper's twelve nearest / bicubic figures exactly.
"""

from __future__ import annotations

import math

import numpy as np

# kiss99_srand(ctx, NULL, 0): the generator's fixed seed (tools/kiss99.c).
_KISS_Z, _KISS_W, _KISS_JSR, _KISS_JCONG = 362436069, 521288629, 123456789, 380116160

# png2y4m's triangle_rand ranges, in the order rgb_to_ycbcr draws them for each pixel of a 2x2 block.
_RANGE_Y, _RANGE_CB, _RANGE_CR = 1223320000, 1479548743, 1255654969


def _kiss99_rand(z: np.ndarray, w: np.ndarray, jsr: np.ndarray, jcong: np.ndarray):
    """kiss99_rand on uint32 arrays (wrapping like C's uint32_t): (new z, w, jsr, jcong, output)."""
    z = np.uint32(36969) * (z & np.uint32(0xFFFF)) + (z >> np.uint32(16))
    w = np.uint32(18000) * (w & np.uint32(0xFFFF)) + (w >> np.uint32(16))
    mwc = (z << np.uint32(16)) + w
    jsr = jsr ^ (jsr << np.uint32(17))
    jsr ^= jsr >> np.uint32(13)
    jsr ^= jsr << np.uint32(5)
    jcong = np.uint32(69069) * jcong + np.uint32(1234567)
    return z, w, jsr, jcong, (mwc ^ jcong) + jsr


def _gf2_apply(cols: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Apply the GF(2)-linear map on 32-bit words whose images of the unit vectors are `cols` to `x`."""
    out = np.zeros_like(x)
    for bit in range(32):
        out ^= np.where((x >> np.uint32(bit)) & np.uint32(1) != 0, cols[bit], np.uint32(0))
    return out


def _lane_starts(steps: int, lanes: int) -> tuple[np.ndarray, ...]:
    """The generator's state after 0, steps, 2 steps, ... (lanes values) calls, per component (uint32).

    Jumps: an MWC step z -> a (z & 0xFFFF) + (z >> 16) is z -> a z mod (a 2^16 - 1) for states below that
    modulus, so `steps` calls multiply by a^steps; the LCG's `steps`-call map is affine; SHR3 is linear
    over GF(2)^32, its `steps`-call map a 32x32 bit matrix (kept as the images of the unit vectors).
    """
    out = []
    for a, seed in ((36969, _KISS_Z), (18000, _KISS_W)):
        mod = a * 65536 - 1
        jump = pow(a, steps, mod)
        out.append([seed * pow(jump, k, mod) % mod for k in range(lanes)])
    cols = np.uint32(1) << np.arange(32, dtype=np.uint32)
    for _ in range(steps):
        cols = _kiss99_rand(cols, cols, cols, cols)[2]
    jsr = np.array([_KISS_JSR], dtype=np.uint32)
    while len(jsr) < lanes:  # doubling: starts of lanes L .. 2L-1 are the map^L of lanes 0 .. L-1
        jsr = np.concatenate([jsr, _gf2_apply(cols, jsr)])
        cols = _gf2_apply(cols, cols)
    out.append(jsr[:lanes])
    mult, add = 1, 0  # the LCG after `steps` calls: x -> mult x + add (mod 2^32)
    for _ in range(steps):
        mult, add = mult * 69069 % 2**32, (add * 69069 + 1234567) % 2**32
    jcong = [_KISS_JCONG]
    for _ in range(lanes - 1):
        jcong.append((mult * jcong[-1] + add) % 2**32)
    out.append(jcong)
    return tuple(np.array(v, dtype=np.uint32) for v in out)


def kiss99_stream(n: int) -> np.ndarray:
    """The first `n` outputs (uint32) of daala's `kiss99_rand` after `kiss99_srand(ctx, NULL, 0)`.

    The stream is cut into about sqrt(n) lanes of consecutive calls; every lane's start state is found by
    jumping ahead (`_lane_starts`), then all lanes run the generator side by side.
    """
    if n <= 0:
        return np.zeros(0, dtype=np.uint32)
    lanes = math.isqrt(n - 1) + 1
    steps = -(-n // lanes)
    z, w, jsr, jcong = _lane_starts(steps, lanes)
    out = np.empty((steps, lanes), dtype=np.uint32)
    for s in range(steps):
        z, w, jsr, jcong, out[s] = _kiss99_rand(z, w, jsr, jcong)
    return out.T.ravel()[:n]


def _next_accepted(u: np.ndarray, limit: int) -> np.ndarray:
    """nxt[i] = the smallest j >= i with u[j] < limit (len(u) if none), for i = 0 .. len(u)."""
    n = len(u)
    idx = np.where(u < limit, np.arange(n), n)
    nxt = np.minimum.accumulate(idx[::-1])[::-1]
    return np.concatenate([nxt, [n]])


def _dither_table(nblocks: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """png2y4m's dither for the first `nblocks` 2x2 blocks in raster order (the generator is reseeded for
    every image, so the dither depends on the block index only): yd (nblocks, 4), cbd (nblocks, 4),
    crd (nblocks, 4) as int64, pixel k of a block at (row 2bj + k // 2, column 2bi + k % 2).

    triangle_rand(range) draws r1, then r2, each redrawn while >= m = floor((2^32 - 1) / (range + 1)) *
    (range + 1), and returns r1 % (range + 1) - r2 % (range + 1). Rejection makes the stream position
    data-independent but irregular; it is resolved with "next accepted draw" tables and pointer doubling.
    """
    kinds = [_RANGE_Y, _RANGE_Y, _RANGE_CB, _RANGE_CB, _RANGE_CR, _RANGE_CR] * 4  # 24 draws per block
    ndraws = 32 * nblocks + 1024  # ~30.1 draws per block on average
    while True:
        u = kiss99_stream(ndraws)
        nxt = {r: _next_accepted(u, 0xFFFFFFFF // (r + 1) * (r + 1)) for r in set(kinds)}
        # block_step[p]: the stream position after one block's 24 draws starting at position p
        block_step = np.arange(ndraws + 1)
        for r in kinds:
            block_step = np.minimum(nxt[r][block_step] + 1, ndraws)
        starts = np.zeros(1, dtype=np.int64)
        jump = block_step  # block_step applied len(starts) times
        while len(starts) < nblocks:
            starts = np.concatenate([starts, jump[starts]])
            jump = jump[jump]
        starts = starts[:nblocks]
        if block_step[starts[-1]] < ndraws:
            break
        ndraws *= 2
    values = []
    pos = starts
    for r in kinds:
        taken = nxt[r][pos]
        values.append(u[taken].astype(np.int64) % (r + 1))
        pos = taken + 1
    tri = np.stack([values[i] - values[i + 1] for i in range(0, 24, 2)], axis=1)  # (nblocks, 12)
    return tri[:, 0::3], tri[:, 1::3], tri[:, 2::3]  # yd[k], cbd[k], crd[k] for k = 0..3


_TABLE: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # the largest table made so far


def dither(nblocks: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(yd, cbd, crd), each (nblocks, 4) int64: png2y4m's triangular dither for the first `nblocks` blocks.
    One table (a power of two of blocks, at least 2^16) is kept and sliced; it grows when a bigger picture
    comes."""
    if not _TABLE or len(_TABLE[0][0]) < nblocks:
        _TABLE[:] = [_dither_table(1 << max(16, (nblocks - 1).bit_length()))]
    yd, cbd, crd = _TABLE[0]
    return yd[:nblocks], cbd[:nblocks], crd[:nblocks]


def _div_round(x: np.ndarray, y: int) -> np.ndarray:
    """OD_DIV_ROUND(x, y) for y > 0: x / y rounded half away from zero (C integer division)."""
    q = (np.abs(x) + (y >> 1)) // y
    return np.where(x < 0, -q, q)


def _wrap_int32(x: np.ndarray) -> np.ndarray:
    """An int64 value as the int32 it becomes in C (two's complement wrap-around)."""
    return (x + 2**31 & 0xFFFFFFFF) - 2**31


def _calc_y(r: np.ndarray, g: np.ndarray, b: np.ndarray, cb: np.ndarray, cr: np.ndarray) -> np.ndarray:
    """png2y4m's calc_y: the luma in [16, 255] (int64) whose reconstruction with the block's quantised chroma
    (cb, cr) is nearest the dithered 16-bit (r, g, b); ties go to the even value."""
    cb, cr = cb - 128, cr - 128
    chroma = (4490222169144 * cr, -534117096223 * cb - 1334761232047 * cr, 5290866304968 * cb)
    res = [(c * 9745792000 - ch + 4096) >> 13 for c, ch in zip((r, g, b), chroma, strict=True)]
    yn = 1063 * res[0] + 3576 * res[1] + 361 * res[2]
    y0 = np.clip(yn // 1780026171875, -16, 238)  # floor, then clamp before adding the offset

    def err(y: np.ndarray) -> np.ndarray:
        total = np.zeros_like(y)
        for c, ch in zip((r, g, b), chroma, strict=True):
            rec = np.clip(_div_round(2916394880000 * y + ch, 9745792000), 0, 65535)
            total = total + (c - rec) ** 2
        return _wrap_int32(total)  # int32 arithmetic in the C

    err0, err1 = err(y0), err(y0 + 1)
    y0 = np.where(err1 < err0, y0 + 1, np.where(err1 == err0, y0 + (y0 & 1), y0))
    return y0 + 16


def png2y4m_luma(rgb: np.ndarray) -> np.ndarray:
    """The Y' plane (uint8, (H, W)) that png2y4m (default options) writes for an 8-bit RGB image (H, W, 3).

    8-bit samples are widened to 16 bits by repeating the byte (v * 257), dithered per pixel in Y'CbCr
    (projected back to RGB), chroma is the rounded BT.709 transform of each 2x2 block's RGB sum, and each
    luma value is `_calc_y` of its pixel given that chroma. Odd sizes repeat the last dithered column / row
    inside the block, as the C does.
    """
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected uint8 RGB (H, W, 3), got {rgb.dtype} {rgb.shape}")
    h, w = rgb.shape[:2]
    hb, wb = (h + 1) // 2, (w + 1) // 2
    yd, cbd, crd = dither(hb * wb)
    # pixel k of block (bj, bi) sits at (2 bj + k // 2, 2 bi + k % 2)
    yd = yd.reshape(hb, wb, 2, 2).transpose(0, 2, 1, 3).reshape(2 * hb, 2 * wb)
    cbd = np.repeat(np.repeat(cbd[:, 0].reshape(hb, wb), 2, 0), 2, 1)  # 4:2:0 uses cbd[0], crd[0]
    crd = np.repeat(np.repeat(crd[:, 0].reshape(hb, wb), 2, 0), 2, 1)
    src = np.pad(rgb.astype(np.int64) * 257, ((0, 2 * hb - h), (0, 2 * wb - w), (0, 0)), mode="edge")
    r = src[..., 0] + _div_round(2 * yd + 3 * crd, 8176000)  # get_dithered_pixel
    g = src[..., 1] + _div_round(2384 * yd + 361 * cbd + 1063 * crd, 9745792000)
    b = src[..., 2] + _div_round(2 * yd + 3 * cbd, 8176000)
    for plane in (r, g, b):
        if w % 2:
            plane[:, w] = plane[:, w - 1]
        if h % 2:
            plane[h, :] = plane[h - 1, :]
    rsum, gsum, bsum = (p.reshape(hb, 2, wb, 2).sum(axis=(1, 3)) for p in (r, g, b))
    cb = np.clip(_div_round(-29764 * rsum - 100128 * gsum + 129892 * bsum, 304016865) + 128, 0, 255)
    cr = np.clip(_div_round(110236 * rsum - 100128 * gsum - 10108 * bsum, 258011295) + 128, 0, 255)
    cb = np.repeat(np.repeat(cb, 2, 0), 2, 1)
    cr = np.repeat(np.repeat(cr, 2, 0), 2, 1)
    return _calc_y(r, g, b, cb, cr)[:h, :w].astype(np.uint8)


def _check_planes(y1: np.ndarray, y2: np.ndarray) -> None:
    if y1.shape != y2.shape or y1.ndim != 2:
        raise ValueError(f"expected two 2-D planes of one size, got {y1.shape} and {y2.shape}")


def dump_psnr(y1: np.ndarray, y2: np.ndarray) -> float:
    """dump_psnr's Y' figure for one frame: 10 (log10(255^2) + log10(pixels) - log10(squared error));
    inf for identical planes."""
    _check_planes(y1, y2)
    sqerr = int(((y1.astype(np.int64) - y2.astype(np.int64)) ** 2).sum())
    if sqerr == 0:
        return math.inf
    return 10 * (math.log10(255 * 255) + math.log10(y1.size) - math.log10(sqerr))


KERNEL_WEIGHT = 256  # 1 << KERNEL_SHIFT


def gaussian_kernel(sigma: float, max_len: int) -> np.ndarray:
    """dump_ssim's gaussian_filter_init: integer Gaussian taps summing to 256, long enough that the first
    truncated tap would round below half a unit, at most 2 (max_len - 1) + 1 taps. int64 array."""
    scale = 1 / (math.sqrt(2 * math.pi) * sigma)
    nhisigma2 = -0.5 / (sigma * sigma)
    s = math.sqrt(0.5 * math.pi) * sigma * (1.0 / KERNEL_WEIGHT)
    length = 0.0 if s >= 1 else math.floor(sigma * math.sqrt(-2 * math.log(s)))
    kernel_len = max_len - 1 if length >= max_len else int(length)
    side = [
        int(KERNEL_WEIGHT * scale * math.exp(nhisigma2 * ci * ci) + 0.5) for ci in range(kernel_len, 0, -1)
    ]
    return np.array(side + [KERNEL_WEIGHT - 2 * sum(side)] + side[::-1], dtype=np.int64)


def _filter_cut(x: np.ndarray, kernel: np.ndarray, axis: int) -> np.ndarray:
    """sum_k kernel[k] x[i - offs + k] along `axis` of a float64 array of integers, taps outside the
    picture left out. Exact: every partial sum is an integer below 2^53. The kernel is symmetric."""
    offs = len(kernel) // 2
    x = np.moveaxis(x, axis, 0)
    n = x.shape[0]
    out = kernel[offs] * x
    for d in range(1, min(offs, n - 1) + 1):  # out[i] += kernel[offs + d] (x[i + d] + x[i - d])
        tap = float(kernel[offs + d])
        out[:-d] += tap * x[d:]
        out[d:] += tap * x[:-d]
    return np.moveaxis(out, 0, axis)


def _mass_cut(n: int, kernel: np.ndarray) -> np.ndarray:
    """The kernel mass left inside a line of n samples at each position (float64, (n,))."""
    return _filter_cut(np.ones(n), kernel, 0)


def dump_ssim(y1: np.ndarray, y2: np.ndarray, *, par: float = 1.0) -> float:
    """dump_ssim's raw Y' SSIM for one 8-bit frame (`calc_ssim`): Gaussian windows with sigma = 1.5 H / 256
    vertically (/ par horizontally), integer taps, windows cut at the picture edges, and the SSIM map
    averaged with each window's remaining mass as its weight."""
    _check_planes(y1, y2)
    h, w = y1.shape
    vkernel = gaussian_kernel(h * (1.5 / 256), min(w, h))
    hkernel = gaussian_kernel(h * (1.5 / 256) / par, min(w, h))
    x, y = y1.astype(np.float64), y2.astype(np.float64)
    # window moments as the C's int64 sums (exact in float64: all below 2^53); the window mass is separable
    mux, muy, x2, xy, y2m = (
        _filter_cut(_filter_cut(p, hkernel, 1), vkernel, 0) for p in (x, y, x * x, x * y, y * y)
    )
    mw = np.outer(_mass_cut(h, vkernel), _mass_cut(w, hkernel))
    samplemax = 255
    c1 = samplemax * samplemax * (0.01 * 0.01) * mw * mw
    c2 = samplemax * samplemax * (0.03 * 0.03) * mw * mw
    mx2, mxy, my2 = mux * mux, mux * muy, muy * muy
    ssim_map = (
        mw
        * (2 * mxy + c1)
        * (c2 + 2 * (xy * mw - mxy))
        / ((mx2 + my2 + c1) * (x2 * mw - mx2 + y2m * mw - my2 + c2))
    )
    # the C accumulates in raster order; cumsum keeps that order (np.sum would not)
    return float(np.cumsum(ssim_map.ravel())[-1] / np.cumsum(mw.ravel())[-1])
