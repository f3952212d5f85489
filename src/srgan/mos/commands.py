"""`srgan mos create | serve | report`: the command-line side of the MOS study (parsers live in cli.py)."""

from __future__ import annotations

import argparse
import socket
import sys
from pathlib import Path


def _method_specs(specs: list[str]) -> dict[str, str]:
    methods: dict[str, str] = {}
    for spec in specs:
        name, sep, folder = spec.partition("=")
        if not sep or not name or not folder:
            raise ValueError(f"--method {spec!r}: write NAME=DIR, e.g. --method SRGAN=out/sr/SRGAN")
        if name in methods:
            raise ValueError(f"--method {name} is given twice")
        methods[name] = folder
    return methods


def create(args: argparse.Namespace) -> int:
    from .db import create_study

    try:
        made = create_study(
            args.study, _method_specs(args.method), args.reference, args.calibration,
            images_per_rater=args.images_per_rater, repeats=args.repeats, raters=args.raters,
            scale=args.scale, seed=args.seed, force=args.force,
        )  # fmt: skip
    except (ValueError, FileNotFoundError, FileExistsError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for w in made.warnings:
        print(f"warning: {w}", file=sys.stderr)
    print(
        f"created {made.path}: {made.sources} images x {len(made.methods)} versions "
        f"({', '.join(made.methods)}), "
        f"{made.calibration_images} calibration images, {len(made.rater_tokens)} raters"
    )
    print(f"next: srgan mos serve {made.path} --host 0.0.0.0 --port 8000  (prints the admin and rater links)")
    return 0


def lan_address() -> str:
    """This machine's address on the local network (no packet is sent), or 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("10.255.255.255", 1))
            return s.getsockname()[0]
        except OSError:
            return "127.0.0.1"


def serve(args: argparse.Namespace) -> int:
    import uvicorn

    from .app import create_app
    from .db import get_meta, open_study, progress

    try:
        app = create_app(args.study)
        with open_study(args.study) as conn:
            meta, prog = get_meta(conn), progress(conn)
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    host = lan_address() if args.host in ("0.0.0.0", "::") else args.host
    base = f"http://{host}:{args.port}"
    print(
        f"study {args.study}: {len(prog['raters'])} raters, {prog['ratings']} of {prog['assigned']} ratings"
    )
    print(f"admin (progress, new rater links): {base}/admin/{meta['admin_token']}")
    for r in prog["raters"]:
        print(f"rater {r['id']:>3} {r['rated']:>5}/{r['total']:<5} {base}/r/{r['token']}")
    print(
        "Ctrl-C stops the server; every rating is already saved. Run the same command to continue.",
        flush=True,
    )
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, access_log=False)
    return 0


def report(args: argparse.Namespace) -> int:
    from .report import write_report

    out = Path(args.out) if args.out else Path(args.study).with_name(Path(args.study).stem + "_report")
    try:
        paths = write_report(args.study, out)
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(paths["markdown"].read_text())
    print(f"wrote {', '.join(str(p) for p in paths.values())}")
    return 0


VERBS = {"create": create, "serve": serve, "report": report}
