"""``wmgym collect`` and ``wmgym show``: trajectory files from the command line."""

from __future__ import annotations

import argparse


def cmd_collect(args: argparse.Namespace) -> int:
    import gymnasium as gym

    import wmgym  # noqa: F401 - registers ids
    from wmgym.training.collect import CollectConfig, collect

    gym.spec(args.env)  # unknown ids fail here with Gymnasium's suggestions
    cfg = CollectConfig(env=args.env, policy=args.policy, episodes=args.episodes, out=args.out,
                        workers=args.workers, split=args.split, seed=args.seed, max_steps=args.max_steps,
                        progress=not args.quiet)
    n = collect(cfg)
    print(f"wrote {n} new episode(s) to {args.out}")
    return 0


def format_episode(ep) -> str:
    """A human-readable transcript of one episode."""
    lines = [f"# {ep.env_id} {ep.game_id} (split={ep.split}, policy={ep.policy}, seed={ep.seed})",
             f"Task: {ep.task}", "", ep.initial_observation]
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
    p = sub.add_parser("collect", help="roll a policy in a real env into a trajectory file (resumable)")
    p.add_argument("--env", default="TextWorld-v0", help="registered real env id (see `wmgym envs`)")
    p.add_argument("--policy", default="expert", help="expert | random | noisy-expert:EPS | explore, optionally +score:P "
                   "(e.g. expert+score:0.3)")
    p.add_argument("--episodes", type=int, default=10)
    p.add_argument("--out", required=True, help="trajectory file (JSON Lines); rerun to resume")
    p.add_argument("--workers", type=int, default=1, help="parallel processes")
    p.add_argument("--split", default="train")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-steps", type=int, default=None, help="step limit (default: the env's)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_collect)

    p = sub.add_parser("show", help="print one episode of a trajectory file")
    p.add_argument("file")
    p.add_argument("--policy", default=None, help="only episodes of this policy")
    p.add_argument("--won", action="store_true", help="only won episodes")
    p.add_argument("--skip", type=int, default=0, help="skip this many matching episodes")
    p.set_defaults(func=cmd_show)
