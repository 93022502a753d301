"""``wmgym show``: print one episode of a trajectory file."""

from __future__ import annotations

import argparse


def format_episode(ep) -> str:
    """A human-readable transcript of one episode."""
    lines = [f"# {ep.env_id} {ep.game_id} (split={ep.split}, policy={ep.policy}, seed={ep.seed})",
             f"Task: {ep.task}", "", ep.initial_observation]
    if ep.synthetic:  # played in a twin (wmgym synth)
        lines.insert(1, f"(synthetic: played in the twin, world model {ep.world_model})")
    for i, s in enumerate(ep.steps, 1):
        lines += ["", f"[{i}] > {s.action}", s.observation]
    total = sum(s.reward for s in ep.steps)
    lines += ["", f"== {'WON' if ep.won else 'not won'} in {len(ep.steps)} steps, return {total:g}"]
    return "\n".join(lines)


def cmd_show(args: argparse.Namespace) -> int:
    from wmgym.training.trajectories import read_episodes

    for i, ep in enumerate(read_episodes(args.file)):
        if (args.policy is None or ep.policy == args.policy) and (not args.won or ep.won):
            if args.skip == 0:
                print(format_episode(ep))
                return 0
            args.skip -= 1
    raise ValueError(f"no matching episode in {args.file}")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("show", help="print one episode of a trajectory file")
    p.add_argument("file")
    p.add_argument("--policy", default=None, help="only episodes of this policy")
    p.add_argument("--won", action="store_true", help="only won episodes")
    p.add_argument("--skip", type=int, default=0, help="skip this many matching episodes")
    p.set_defaults(func=cmd_show)
