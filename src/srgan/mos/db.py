"""MOS study storage: one SQLite file per study, holding the images themselves, the raters, their item order
and every rating as a committed row (WAL journal, synchronous=FULL: a rating acknowledged to the browser
survives the server being killed at any moment).

Tables
  meta(key, value)                     settings: admin token, seed, images per rater, repeats, methods ...
  images(id, kind, method, dataset, stem, anchor, width, height, mime, data)
                                       kind 'test' (a method's SR image or the reference HR) or 'calibration'
                                       (anchor 1: nearest-neighbour x4, anchor 5: the original HR); `id` is
                                       an opaque random token, the only name the browser ever sees
  raters(id, token, name, created_at, started_at)
  assignments(rater_id, position, image_id, phase, showing)
                                       each rater's random item order; showing 2 marks a test-retest repeat
  ratings(rater_id, position, score, created_at)
                                       at most one per assignment: a retried request is a no-op
"""

from __future__ import annotations

import io
import json
import random
import re
import secrets
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError

SCHEMA_VERSION = "1"
REFERENCE = "HR"  # the method name under which the reference (original HR) images are rated
ANCHORS = {"nearest": 1, "hr": 5}  # calibration versions and the score each stands for
BROWSER_FORMATS = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")

SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE images (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('test', 'calibration')),
    method TEXT NOT NULL,
    dataset TEXT NOT NULL,
    stem TEXT NOT NULL,
    anchor INTEGER CHECK (anchor IN (1, 5)),
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    mime TEXT NOT NULL,
    data BLOB NOT NULL,
    UNIQUE (kind, method, dataset, stem)
);
CREATE TABLE raters (
    id INTEGER PRIMARY KEY,
    token TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    created_at REAL NOT NULL,
    started_at REAL
);
CREATE TABLE assignments (
    rater_id INTEGER NOT NULL REFERENCES raters (id),
    position INTEGER NOT NULL,
    image_id TEXT NOT NULL REFERENCES images (id),
    phase TEXT NOT NULL CHECK (phase IN ('calibration', 'test')),
    showing INTEGER NOT NULL CHECK (showing IN (1, 2)),
    PRIMARY KEY (rater_id, position)
);
CREATE INDEX assignments_image ON assignments (rater_id, image_id);
CREATE TABLE ratings (
    rater_id INTEGER NOT NULL,
    position INTEGER NOT NULL,
    score INTEGER NOT NULL CHECK (score BETWEEN 1 AND 5),
    created_at REAL NOT NULL,
    PRIMARY KEY (rater_id, position),
    FOREIGN KEY (rater_id, position) REFERENCES assignments (rater_id, position)
);
"""


class StudyError(ValueError):
    """A request the study cannot honour; `status` is the HTTP status the web app answers with."""

    status = 400


class NotFound(StudyError):
    status = 404


class Conflict(StudyError):
    status = 409


@contextmanager
def open_study(path: str | Path) -> Iterator[sqlite3.Connection]:
    """A connection to an existing study (autocommit; writers use `BEGIN IMMEDIATE`), closed on exit."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no study at {path}: make one with `srgan mos create {path} ...`")
    conn = _connect(path)
    try:
        try:
            version = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        except sqlite3.DatabaseError as e:
            raise ValueError(f"{path} is not a MOS study (SQLite: {e})") from e
        if version is None or version[0] != SCHEMA_VERSION:
            raise ValueError(f"{path} is not a MOS study of schema version {SCHEMA_VERSION}")
        yield conn
    finally:
        conn.close()


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, timeout=30.0, check_same_thread=False)
    conn.execute("PRAGMA busy_timeout = 30000")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


@contextmanager
def write_transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE ... COMMIT (ROLLBACK on any error): all of it or nothing."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def get_meta(conn: sqlite3.Connection) -> dict:
    """Study settings: admin_token, seed, images_per_rater (None: all), repeats, methods (rating order)."""
    meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
    return {k: json.loads(v) for k, v in meta.items()}


# ---------------------------------------------------------------------------------------------- creation


def find_images(folder: str | Path) -> dict[tuple[str, str], Path]:
    """Images of one method: {(set, stem): file}.

    Layouts: flat `DIR/<image>` (set ""), `DIR/<set>/<image>`, or the benchmark layout `DIR/<set>/HR/<image>`
    (so `--reference data/bench` works).
    """
    from ..io import list_images

    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"not a folder: {folder}")
    found: dict[tuple[str, str], Path] = {}

    def add(dataset: str, files: list[Path]) -> None:
        for f in files:
            if (dataset, f.stem) in found:
                raise ValueError(f"two images named {f.stem!r} in {f.parent}: keep one of them")
            found[dataset, f.stem] = f

    flat = list_images(folder)
    if flat:
        add("", flat)
        return found
    for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
        images = list_images(sub) or (list_images(sub / "HR") if (sub / "HR").is_dir() else [])
        add(sub.name, images)
    if not found:
        raise ValueError(
            f"no images in {folder} (expected DIR/<image>, DIR/<set>/<image> or DIR/<set>/HR/<image>)"
        )
    return found


def _encode(data: bytes, source: str) -> tuple[bytes, str, int, int]:
    """File bytes -> (bytes a browser shows, mime, width, height); other formats are re-encoded as PNG."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            if img.format in BROWSER_FORMATS:
                return data, BROWSER_FORMATS[img.format], img.width, img.height
            from ..io import pil_to_rgb

            buf = io.BytesIO()
            pil_to_rgb(img).save(buf, format="PNG")
            return buf.getvalue(), "image/png", img.width, img.height
    except (UnidentifiedImageError, OSError) as e:
        raise ValueError(f"cannot read image {source}: {e}") from e


def _png(img) -> tuple[bytes, str, int, int]:
    from ..io import tensor_to_pil

    buf = io.BytesIO()
    pil = tensor_to_pil(img)
    pil.save(buf, format="PNG")
    return buf.getvalue(), "image/png", pil.width, pil.height


def calibration_pair(path: Path, scale: int = 4) -> tuple[tuple, tuple]:
    """An HR image -> (nearest-neighbour version, HR version), each as (bytes, mime, width, height).

    The HR image is cropped to a multiple of `scale` (top-left kept), shrunk with MATLAB bicubic and enlarged
    again by pixel replication: the paper's low anchor. The cropped HR is the high anchor."""
    from ..baselines import nearest_upscale
    from ..imresize import bicubic_degrade
    from ..io import read_image

    hr_img = read_image(path)
    h, w = hr_img.shape[-2] // scale * scale, hr_img.shape[-1] // scale * scale
    if h == 0 or w == 0:
        raise ValueError(f"calibration image {path} is smaller than {scale}x{scale}")
    hr_img = hr_img[:, :h, :w]
    nn_img = nearest_upscale(bicubic_degrade(hr_img, scale), scale)  # (3, h/s, w/s) -> (3, h, w)
    return _png(nn_img), _png(hr_img)


@dataclass
class Created:
    path: Path
    methods: list[str]
    test_images: int
    sources: int
    calibration_images: int
    rater_tokens: list[str]
    warnings: list[str]


def create_study(
    path: str | Path,
    methods: dict[str, str | Path],
    reference: str | Path,
    calibration: str | Path | None,
    *,
    images_per_rater: int | None = None,
    repeats: int = 0,
    raters: int = 0,
    scale: int = 4,
    seed: int | None = None,
    force: bool = False,
) -> Created:
    """Build a study file at `path` from {method name: folder of SR images}, the reference HR folder and a
    folder of calibration HR images (not in the test).

    Images are matched across methods and the reference by set + file stem; every method must have every
    reference image. Images are copied into the study, so serving never touches these folders. Each rater
    gets `images_per_rater` source images (None: all), every version of each (the methods and HR), in a
    random order after the calibration items, with `repeats` of those items shown a second time
    (test-retest). `raters` invitation tokens are made now; more can be added later.
    """
    path = Path(path)
    if path.exists() and not force:
        raise FileExistsError(f"{path} exists: pass --force to replace the study (its ratings are lost)")
    if not methods:
        raise ValueError("give at least one --method NAME=DIR")
    for name in methods:
        if not _NAME.match(name):
            raise ValueError(f"method name {name!r}: use letters, digits and _ . + - (e.g. SRGAN-VGG54)")
        if name.casefold() == REFERENCE.casefold():
            raise ValueError(f"method name {name!r} is reserved for the --reference images")
    if len({n.casefold() for n in methods}) != len(methods):
        raise ValueError(f"method names must differ (ignoring case): {', '.join(methods)}")
    if repeats < 0 or raters < 0 or scale < 1:
        raise ValueError("--repeats and --raters must be >= 0, --scale >= 1")

    ref = find_images(reference)
    versions = {name: find_images(folder) for name, folder in methods.items()}
    warnings: list[str] = []
    for name, found in versions.items():
        missing = sorted(set(ref) - set(found))
        if missing:
            shown = ", ".join(f"{d}/{s}" if d else s for d, s in missing[:5])
            raise ValueError(
                f"method {name} ({methods[name]}) lacks {len(missing)} of the {len(ref)} reference images "
                f"({shown}{', ...' if len(missing) > 5 else ''}): images are matched by set and file stem"
            )
        extra = len(set(found) - set(ref))
        if extra:
            warnings.append(f"method {name}: {extra} images not in the reference are left out")
    if images_per_rater is not None and not 1 <= images_per_rater <= len(ref):
        raise ValueError(f"--images-per-rater must be between 1 and the {len(ref)} reference images")
    calib = find_images(calibration) if calibration is not None else {}
    overlap = {stem for _, stem in calib} & {stem for _, stem in ref}
    if overlap:
        raise ValueError(f"calibration images must not be in the test: {', '.join(sorted(overlap)[:5])}")

    tmp = path.with_name(path.name + ".partial")
    for p in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
        p.unlink(missing_ok=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = _connect(tmp)
    try:
        conn.executescript(SCHEMA)
        conn.execute("PRAGMA journal_mode = WAL")
        order = [*methods, REFERENCE]
        meta = {
            "schema_version": SCHEMA_VERSION, "created_at": time.time(),
            "admin_token": secrets.token_urlsafe(24),
            "seed": secrets.randbits(32) if seed is None else seed, "images_per_rater": images_per_rater,
            "repeats": repeats, "methods": order, "scale": scale,
        }  # fmt: skip
        with write_transaction(conn):
            conn.executemany(
                "INSERT INTO meta VALUES (?, ?)",
                [(k, v if k == "schema_version" else json.dumps(v)) for k, v in meta.items()],
            )
            for (dataset, stem), ref_file in sorted(ref.items()):
                sizes = {}
                for name in order:
                    file = ref_file if name == REFERENCE else versions[name][dataset, stem]
                    data, mime, w, h = _encode(file.read_bytes(), str(file))
                    sizes[name] = (w, h)
                    _insert_image(conn, "test", name, dataset, stem, None, data, mime, w, h)
                if len(set(sizes.values())) > 1:
                    warnings.append(f"{dataset}/{stem}: sizes differ between versions: {sizes}")
            for (dataset, stem), file in sorted(calib.items()):
                pair = calibration_pair(file, scale)
                for (kind, anchor), (data, mime, w, h) in zip(ANCHORS.items(), pair, strict=True):
                    _insert_image(conn, "calibration", kind, dataset, stem, anchor, data, mime, w, h)
        tokens = add_raters(conn, raters) if raters else []
    finally:
        conn.close()
    if force:
        for p in (Path(f"{path}-wal"), Path(f"{path}-shm")):
            p.unlink(missing_ok=True)
    tmp.replace(path)  # closed cleanly: the WAL is checkpointed and gone, the file is complete
    return Created(path, order, len(ref) * len(order), len(ref), len(calib), tokens, warnings)


def _insert_image(conn, kind, method, dataset, stem, anchor, data, mime, width, height) -> None:
    conn.execute(
        "INSERT INTO images VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (secrets.token_urlsafe(12), kind, method, dataset, stem, anchor, width, height, mime, data),
    )


# ------------------------------------------------------------------------------------------------ raters


def _item_order(rng: random.Random, items: list[str], repeats: int) -> list[tuple[str, int]]:
    """Shuffle test items with `repeats` of them shown twice -> [(image_id, showing)], no repeat adjacent
    to its first showing where that can be avoided."""
    again = rng.sample(items, min(repeats, len(items)))
    seq = items + again
    for _ in range(100):
        rng.shuffle(seq)
        if all(a != b for a, b in zip(seq, seq[1:], strict=False)):
            break
    seen: set[str] = set()
    out = []
    for image_id in seq:
        out.append((image_id, 2 if image_id in seen else 1))
        seen.add(image_id)
    return out


def add_raters(conn: sqlite3.Connection, count: int, name: str = "") -> list[str]:
    """Add `count` raters and their item orders; returns their invitation tokens.

    Each new rater gets the source images that the fewest raters have so far (ties at random), so coverage
    stays balanced; the order is random per rater (seeded by the study seed and the rater id)."""
    if not 1 <= count <= 1000:
        raise StudyError("add between 1 and 1000 raters at a time")
    meta = get_meta(conn)
    tokens = []
    with write_transaction(conn):
        test = conn.execute(
            "SELECT id, dataset, stem FROM images WHERE kind = 'test' ORDER BY rowid"
        ).fetchall()
        calib = [
            r[0] for r in conn.execute("SELECT id FROM images WHERE kind = 'calibration' ORDER BY rowid")
        ]
        by_source: dict[tuple[str, str], list[str]] = {}
        for image_id, dataset, stem in test:
            by_source.setdefault((dataset, stem), []).append(image_id)
        counts = dict.fromkeys(by_source, 0)
        for dataset, stem, n in conn.execute(
            "SELECT i.dataset, i.stem, COUNT(DISTINCT a.rater_id) FROM assignments a "
            "JOIN images i ON i.id = a.image_id WHERE a.phase = 'test' GROUP BY i.dataset, i.stem"
        ):
            counts[dataset, stem] = n
        k = meta["images_per_rater"] or len(by_source)
        for _ in range(count):
            token = secrets.token_urlsafe(16)
            cur = conn.execute(
                "INSERT INTO raters (token, name, created_at) VALUES (?, ?, ?)", (token, name, time.time())
            )
            rater_id = cur.lastrowid
            rng = random.Random(f"{meta['seed']}:{rater_id}")
            chosen = sorted(by_source, key=lambda s: (counts[s], rng.random()))[:k]
            for s in chosen:
                counts[s] += 1
            calib_order = rng.sample(calib, len(calib))
            test_order = _item_order(rng, [i for s in chosen for i in by_source[s]], meta["repeats"])
            rows = [(rater_id, p, i, "calibration", 1) for p, i in enumerate(calib_order)]
            rows += [(rater_id, len(calib) + p, i, "test", sh) for p, (i, sh) in enumerate(test_order)]
            conn.executemany("INSERT INTO assignments VALUES (?, ?, ?, ?, ?)", rows)
            tokens.append(token)
    return tokens


def _rater_id(conn: sqlite3.Connection, token: str) -> int:
    row = conn.execute("SELECT id FROM raters WHERE token = ?", (token,)).fetchone()
    if row is None:
        raise NotFound("unknown invitation: check the link you were given, or ask the study's organiser")
    return row[0]


def rater_state(conn: sqlite3.Connection, token: str) -> dict:
    """What the rater's page shows: progress, the next item (opaque image id, phase, anchor score for
    calibration items), the one after it (to preload) and the example anchors for the instructions."""
    rater_id = _rater_id(conn, token)
    started = conn.execute("SELECT started_at FROM raters WHERE id = ?", (rater_id,)).fetchone()[0]
    total, calib_total = conn.execute(
        "SELECT COUNT(*), COALESCE(SUM(phase = 'calibration'), 0) FROM assignments WHERE rater_id = ?",
        (rater_id,),
    ).fetchone()
    rated = conn.execute("SELECT COUNT(*) FROM ratings WHERE rater_id = ?", (rater_id,)).fetchone()[0]
    pending = conn.execute(
        "SELECT a.position, a.image_id, a.phase, i.anchor "
        "FROM assignments a JOIN images i ON i.id = a.image_id "
        "LEFT JOIN ratings r ON r.rater_id = a.rater_id AND r.position = a.position "
        "WHERE a.rater_id = ? AND r.position IS NULL ORDER BY a.position LIMIT 2",
        (rater_id,),
    ).fetchall()
    anchors = conn.execute(
        "SELECT i.id, i.anchor FROM assignments a JOIN images i ON i.id = a.image_id "
        "WHERE a.rater_id = ? AND a.phase = 'calibration' ORDER BY i.dataset, i.stem, i.anchor LIMIT 2",
        (rater_id,),
    ).fetchall()
    nxt = None
    if pending:
        position, image_id, phase, anchor = pending[0]
        nxt = {"position": position, "image": image_id, "phase": phase, "anchor": anchor}
    return {
        "started": started is not None or rated > 0, "total": total, "rated": rated,
        "calibration_total": calib_total, "done": not pending, "next": nxt,
        "upcoming": pending[1][1] if len(pending) > 1 else None,
        "anchors": [{"image": i, "score": s} for i, s in anchors],
    }  # fmt: skip


def start(conn: sqlite3.Connection, token: str) -> None:
    """The rater has read the instructions."""
    with write_transaction(conn):
        rater_id = _rater_id(conn, token)
        conn.execute(
            "UPDATE raters SET started_at = COALESCE(started_at, ?) WHERE id = ?", (time.time(), rater_id)
        )


def check_score(score) -> int:
    if isinstance(score, bool) or not isinstance(score, int) or not 1 <= score <= 5:
        raise StudyError(f"score must be a whole number from 1 to 5, got {score!r}")
    return score


def record_rating(conn: sqlite3.Connection, token: str, position: int, image_id: str, score: int) -> bool:
    """Store one rating in its own committed transaction. Returns False if the same rating was already
    stored (a retried request: nothing changes); a different score for a rated item is a Conflict."""
    score = check_score(score)
    if isinstance(position, bool) or not isinstance(position, int):
        raise StudyError(f"position must be a whole number, got {position!r}")
    with write_transaction(conn):
        rater_id = _rater_id(conn, token)
        row = conn.execute(
            "SELECT image_id FROM assignments WHERE rater_id = ? AND position = ?", (rater_id, position)
        ).fetchone()
        if row is None:
            raise NotFound(f"this invitation has no item at position {position}")
        if row[0] != image_id:
            raise Conflict("this page is out of date (the image does not match the item): reload the page")
        old = conn.execute(
            "SELECT score FROM ratings WHERE rater_id = ? AND position = ?", (rater_id, position)
        ).fetchone()
        if old is not None:
            if old[0] != score:
                raise Conflict(f"this item was already rated {old[0]}; ratings cannot be changed")
            return False
        conn.execute("INSERT INTO ratings VALUES (?, ?, ?, ?)", (rater_id, position, score, time.time()))
    return True


def rater_image(conn: sqlite3.Connection, token: str, image_id: str) -> tuple[bytes, str]:
    """(bytes, mime) of an image in this rater's items; anything else is NotFound."""
    rater_id = _rater_id(conn, token)
    row = conn.execute(
        "SELECT i.data, i.mime FROM assignments a JOIN images i ON i.id = a.image_id "
        "WHERE a.rater_id = ? AND a.image_id = ? LIMIT 1",
        (rater_id, image_id),
    ).fetchone()
    if row is None:
        raise NotFound("no such image in this invitation")
    return row[0], row[1]


def progress(conn: sqlite3.Connection) -> dict:
    """Live progress for the admin: per rater (token, name, rated, total, last rating time) and totals."""
    rows = conn.execute(
        "SELECT r.id, r.token, r.name, r.created_at, r.started_at, "
        "(SELECT COUNT(*) FROM assignments a WHERE a.rater_id = r.id), "
        "(SELECT COUNT(*) FROM ratings g WHERE g.rater_id = r.id), "
        "(SELECT MAX(created_at) FROM ratings g WHERE g.rater_id = r.id) FROM raters r ORDER BY r.id"
    ).fetchall()
    raters = [
        {
            "id": i,
            "token": t,
            "name": n,
            "created_at": c,
            "started_at": s,
            "total": tot,
            "rated": k,
            "last": last,
        }
        for i, t, n, c, s, tot, k, last in rows
    ]
    return {
        "raters": raters, "ratings": sum(r["rated"] for r in raters),
        "assigned": sum(r["total"] for r in raters),
        "finished": sum(r["rated"] == r["total"] for r in raters),
    }  # fmt: skip


def all_ratings(conn: sqlite3.Connection) -> list[dict]:
    """Every rating with what was shown: rater, position, phase, showing, method, dataset, stem, anchor,
    score (for the report)."""
    cols = ("rater", "position", "phase", "showing", "method", "dataset", "stem", "anchor", "score")
    rows = conn.execute(
        "SELECT g.rater_id, g.position, a.phase, a.showing, i.method, i.dataset, i.stem, i.anchor, g.score "
        "FROM ratings g JOIN assignments a ON a.rater_id = g.rater_id AND a.position = g.position "
        "JOIN images i ON i.id = a.image_id ORDER BY g.rater_id, g.position"
    ).fetchall()
    return [dict(zip(cols, r, strict=True)) for r in rows]
