"""``wmgym quickstart``: collect, train the default twins, report their EM and play one beside the real env."""

from __future__ import annotations

import argparse


def cmd_quickstart(args: argparse.Namespace) -> int:
    from wmgym.training.quickstart import quickstart

    return quickstart(envs=args.envs, workers=args.workers, force=args.force)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("quickstart", help="collect, train the default twins on this CPU, report EM, play a twin")
    p.add_argument("--envs", nargs="+", default=None, help="real env ids (default: TextWorld-v0 and ALFWorld-v0)")
    p.add_argument("--workers", type=int, default=2, help="processes (collection, parallel training)")
    p.add_argument("--force", action="store_true", help="retrain the default twins even if they exist")
    p.set_defaults(func=cmd_quickstart)
