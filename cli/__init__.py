"""The ``wmgym`` command line.

One module per command (``wmgym.cli.<command>``), mirroring the command tree; each exposes
``add_parser(subparsers)``, which registers the subcommand and sets
``func(args) -> int`` as its default. This file only lists them, so adding a
command is one module and one line here. Commands import their library code lazily, so
``wmgym --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

#: Modules that contribute subcommands (in ``wmgym --help`` order).
COMMAND_MODULES = [
    "wmgym.cli.envs",
    "wmgym.cli.collect",
    "wmgym.cli.synth",
    "wmgym.cli.show",
    "wmgym.cli.train",
    "wmgym.cli.models",
    "wmgym.cli.quickstart",
    "wmgym.cli.serve",
    "wmgym.cli.bench",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wmgym", description="Text environments and their LLM world-model twins.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    import gymnasium as gym

    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError, ImportError, gym.error.Error) as e:
        # User errors: say what is wrong without a traceback.
        print(f"wmgym {args.command}: error: {e}", file=sys.stderr)
        return 2
    finally:
        _end_process_group()


def _end_process_group() -> None:
    """Destroy the process group a ``torchrun`` command joined (the trainers initialise it and never destroy it):
    left to interpreter exit, its threads can abort a finished rank ("terminate called without an active
    exception"), which fails the whole run."""
    torch = sys.modules.get("torch")
    if torch is not None and torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


if __name__ == "__main__":
    sys.exit(main())
