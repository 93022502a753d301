"""``wmgym envs``: list the registered environment ids."""

from __future__ import annotations

import argparse


def cmd_envs(args: argparse.Namespace) -> int:
    import gymnasium as gym

    from wmgym.envs import ENV_DESCRIPTIONS

    width = max(len(i) for i in ENV_DESCRIPTIONS)
    for env_id in sorted(ENV_DESCRIPTIONS):
        steps = gym.spec(env_id).max_episode_steps
        print(f"{env_id:<{width}}  max_steps={steps:<4} {ENV_DESCRIPTIONS[env_id]}")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("envs", help="list the registered environment ids")
    p.set_defaults(func=cmd_envs)
