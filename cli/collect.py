"""``wmgym collect``: roll an agent (the policy) in a real env into a trajectory file."""

from __future__ import annotations

import argparse


def cmd_collect(args: argparse.Namespace) -> int:
    import gymnasium as gym

    import wmgym  # noqa: F401 - registers ids
    from wmgym.training.collect import CollectConfig, collect

    gym.spec(args.env)  # unknown ids fail here with Gymnasium's suggestions
    cfg = CollectConfig(env=args.env, policy=args.policy, episodes=args.episodes, out=args.out,
                        workers=args.workers, split=args.split, seed=args.seed, max_steps=args.max_steps,
                        progress=not args.quiet, ray=args.ray, format=args.format, spread=args.spread)
    n = collect(cfg)
    print(f"wrote {n} new episode(s) to {args.out}")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("collect", help="roll a policy in a real env into a trajectory file (resumable)")
    p.add_argument("--env", default="TextWorld-v0", help="registered real env id (see `wmgym envs`)")
    p.add_argument("--policy", default="expert", help="agent spec: expert | random | noisy-expert:EPS | explore | "
                   "scripted | scripted:EPS, optionally +score:P (e.g. expert+score:0.3); see wmgym.agents.factory")
    p.add_argument("--episodes", type=int, default=10)
    p.add_argument("--out", required=True, help="trajectory file (JSON Lines); rerun to resume")
    p.add_argument("--workers", type=int, default=1, help="parallel processes")
    p.add_argument("--split", default="train")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-steps", type=int, default=None, help="step limit (default: the env's)")
    p.add_argument("--format", default="wmgym", choices=("wmgym", "word2world"),
                   help="the env's strings: wmgym's, or Word2World's (for its checkpoints and "
                        "`wmgym train export --format word2world`)")
    p.add_argument("--spread", action="store_true",
                   help="episode k plays game (k*s) mod n (s ~ n/golden ratio) instead of k mod n: any number of "
                        "episodes spreads over the whole split (for splits whose games are grouped, as SciWorld's)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--ray", nargs="?", const="local", default=None, metavar="ADDRESS",
                   help="run the --workers as Ray actors: alone, a private local cluster; with an "
                        "address (auto, HOST:6379), that cluster (pip install 'wmgym[dist]'; docs/scaling.md)")
    p.set_defaults(func=cmd_collect)
