"""`srgan` command line: one function per verb (params, weights, train, eval, upscale)."""

from __future__ import annotations

import argparse
import sys


def cmd_params(args: argparse.Namespace) -> int:
    """Print parameter counts of the paper's networks."""
    from .models import Discriminator, Generator, VGG19Features, count_parameters

    rows = [
        ("Generator (SRResNet, B=16)", count_parameters(Generator())),
        ("Discriminator (96x96)", count_parameters(Discriminator())),
        ("VGG19 features to phi_5,4 (frozen)", count_parameters(VGG19Features(layers=("54",)))),
    ]
    for name, n in rows:
        print(f"{name:<38} {n:>12,}")
    return 0


def add_params_parser(sub) -> None:
    p = sub.add_parser("params", help="print parameter counts of the paper's networks")
    p.set_defaults(func=cmd_params)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="srgan", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    add_params_parser(sub)
    # VERB PARSERS (each verb adds its parser here)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
