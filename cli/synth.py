"""``wmgym synth``: play an agent in a twin and write its episodes as (synthetic) trajectories."""

from __future__ import annotations

import argparse


def cmd_synth(args: argparse.Namespace) -> int:
    from wmgym.training.synth import SynthConfig, dropped_path, synth

    cfg = SynthConfig(env=args.env, agent=args.agent, episodes=args.episodes, out=args.out, keep=args.keep,
                      model=args.model, split=args.split, seed=args.seed, max_steps=args.max_steps,
                      format=args.format, workers=args.workers, progress=not args.quiet, ray=args.ray)
    counts = synth(cfg)
    dropped = f"; the {counts['played'] - counts['kept']} others are listed in {dropped_path(args.out)}" \
        if args.keep == "won" else ""
    print(f"played {counts['played']} new episode(s) in {args.env}, the twin judged {counts['won']} won; wrote "
          f"{counts['kept']} to {args.out}{dropped}")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("synth", help="play an agent in a twin into a trajectory file of synthetic episodes "
                       "(resumable)")
    p.add_argument("--env", required=True, help="a twin id, e.g. WM-ALFWorld-v0 (see `wmgym envs`)")
    p.add_argument("--agent", default="scripted", help="observation-only agent spec: random | scripted | "
                   "scripted:EPS | react | lm:DIR[?mode=score] (see wmgym.agents.factory)")
    p.add_argument("--episodes", type=int, default=10, help="episodes to play (indices 0..N-1)")
    p.add_argument("--out", required=True, help="trajectory file (JSON Lines); rerun to resume")
    p.add_argument("--keep", default="all", choices=("all", "won"),
                   help="write every episode, or only those the twin judged successful (as Word2World does)")
    p.add_argument("--model", default=None, help="the twin's world model: a directory or hub id (default: the "
                   "env's embedded default twin)")
    p.add_argument("--split", default="train")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-steps", type=int, default=None, help="step limit (default: the env's)")
    p.add_argument("--format", default="wmgym", choices=("wmgym", "word2world"),
                   help="the env's strings (word2world needs --model trained on them)")
    p.add_argument("--workers", type=int, default=1, help="parallel processes, or Ray actors with --ray (each loads "
                   "the world model)")
    p.add_argument("--ray", nargs="?", const="local", default=None, metavar="ADDRESS",
                   help="play on --workers Ray actors: alone, a private local cluster; with an address (auto, "
                        "HOST:6379), that cluster (pip install 'wmgym[dist]'; docs/scaling.md)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_synth)
