"""Gold trajectories for the model benchmarks: real episodes of scripted policies on held-out games.

:func:`gold_episodes` plays them in the real env, spread over the split's
games, with :func:`wmgym.training.collect.run_episode`, and caches them under
``WMGYM_HOME/benchmarks/gold``; :func:`read_gold` reads ``--trajectories``
files instead.
"""

from __future__ import annotations

import os
from pathlib import Path

from wmgym.paths import wmgym_home


def spread_games(total: int, n: int) -> list[int]:
    """``n`` game indices spread evenly over ``0..total-1`` (all of them when ``n >= total``).

    Splits whose games are grouped by task (SciWorld's) are then covered task
    by task; for shuffled splits (TextWorld, ALFWorld) any fixed subset is as good.
    """
    if n >= total:
        return list(range(total))
    return sorted({(i * total) // n for i in range(n)})


def gold_episodes(env_id: str, episodes: int, *, policies: tuple[str, ...] = ("expert", "noisy-expert:0.3"),
                  split: str = "test", seed: int = 0, spread: bool = True, workers: int = 1,
                  cache_dir: str | os.PathLike | None = None, progress: bool = False) -> list:
    """``episodes`` real episodes of ``split``, spread over ``policies`` and over the split's games.

    Policy ``j`` plays its share of :func:`spread_games` (``spread=False``:
    games ``0, 1, ...``; episode counts split as evenly as possible), game
    ``g`` with seed ``seed + g``. Missing games are generated first with
    ``workers`` processes. Episodes are cached in a trajectory file per (env,
    split, policy, seed) and reused.
    """
    import gymnasium as gym

    from wmgym.training.collect import run_episode
    from wmgym.agents import make_agent
    from wmgym.training.trajectories import TrajectoryWriter, read_episodes, repair

    base = Path(cache_dir) if cache_dir is not None else wmgym_home() / "benchmarks" / "gold"
    base.mkdir(parents=True, exist_ok=True)
    env = None
    out = []
    try:
        for j, policy in enumerate(policies):
            n = episodes // len(policies) + (1 if j < episodes % len(policies) else 0)
            if n == 0:
                continue
            path = base / f"{env_id}-{split}-{policy.replace(':', '_')}-seed{seed}.jsonl"
            repair(path)
            have = {e.index: e for e in read_episodes(path)} if path.exists() else {}
            if env is None:
                env = gym.make(env_id, split=split)
            total = env.unwrapped.num_games(split)
            games = spread_games(total, n) if spread else list(range(min(n, total)))
            missing = [g for g in games if g not in have]
            if missing:
                env.unwrapped.prepare_games(split, missing, workers=workers, progress=progress)
            with TrajectoryWriter(path) as writer:
                for g in missing:
                    ep = run_episode(env, make_agent(policy, env_id, privileged=True), seed=seed + g,
                                     options={"game": g, "split": split}, env_id=env_id, index=g)
                    writer.write(ep)
                    have[g] = ep
            out += [have[g] for g in games]
    finally:
        if env is not None:
            env.close()
    return out


def read_gold(paths: list[str], envs: list[str] | None = None) -> list:
    """Episodes from trajectory files, optionally only those of ``envs``."""
    from wmgym.training.trajectories import load_episodes

    eps = load_episodes(paths)
    return [e for e in eps if envs is None or e.env_id in envs]
