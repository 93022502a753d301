"""Real-env throughput: steps/s for 1 and K worker processes, game generation time.

``python -m wmgym.benchmarks.throughput --env TextWorld-v0 --workers 2``

Each worker process builds the env through its registered id and plays
random admissible commands for ``--steps`` steps (resetting on episode end)
over a fixed set of games that are generated before timing starts. Game
generation time is measured separately on fresh slots in a scratch
``WMGYM_HOME`` (so cached games do not flatter it).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import gymnasium as gym
import numpy as np


def _play(args: tuple[str, int, int, int]) -> tuple[int, float]:
    env_id, steps, seed, n_games = args
    import wmgym  # noqa: F401

    env = gym.make(env_id)
    rng = np.random.default_rng(seed)
    _, info = env.reset(seed=seed, options={"game": seed % n_games})
    start = time.perf_counter()
    for i in range(steps):
        commands = info["admissible_commands"] or ["look"]
        _, _, terminated, truncated, info = env.step(commands[int(rng.integers(len(commands)))])
        if terminated or truncated:
            _, info = env.reset(options={"game": (seed + i) % n_games})
    elapsed = time.perf_counter() - start
    env.close()
    return steps, elapsed


def measure_steps(env_id: str, workers: int, steps: int, n_games: int) -> float:
    """Aggregate steps/s of ``workers`` processes each playing ``steps`` steps."""
    jobs = [(env_id, steps, w, n_games) for w in range(workers)]
    if workers == 1:
        results = [_play(jobs[0])]
    else:
        with mp.get_context("spawn").Pool(workers) as pool:
            results = pool.map(_play, jobs)
    # Per-worker loop time excludes process start-up; the aggregate rate uses the slowest worker.
    return sum(s for s, _ in results) / max(e for _, e in results)


def measure_generation(env_id: str, games: int) -> float | None:
    """Seconds per freshly generated game, or ``None`` if the env generates nothing."""
    env = gym.make(env_id)
    prepare = getattr(env.unwrapped, "prepare_games", None)
    if prepare is None:
        return None
    old = os.environ.get("WMGYM_HOME")
    with tempfile.TemporaryDirectory() as scratch:
        os.environ["WMGYM_HOME"] = scratch
        try:
            start = time.perf_counter()
            prepare("test", list(range(games)), workers=1, progress=False)
            return (time.perf_counter() - start) / games
        finally:
            if old is None:
                os.environ.pop("WMGYM_HOME")
            else:
                os.environ["WMGYM_HOME"] = old


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--env", default="TextWorld-v0", help="registered real env id")
    parser.add_argument("--workers", type=int, default=2, help="K for the multi-process figure")
    parser.add_argument("--steps", type=int, default=300, help="steps per worker")
    parser.add_argument("--games", type=int, default=8, help="games played (generated before timing)")
    parser.add_argument("--gen-games", type=int, default=5, help="fresh games timed for generation")
    parser.add_argument("--out", default="results/throughput", help="results folder")
    args = parser.parse_args(argv)

    import wmgym  # noqa: F401

    env = gym.make(args.env)
    prepare = getattr(env.unwrapped, "prepare_games", None)
    if prepare is not None:
        prepare("train", list(range(args.games)), workers=args.workers, progress=True)
    env.close()

    result = {
        "env": args.env,
        "command": " ".join([Path(sys.executable).name, "-m", "wmgym.benchmarks.throughput", *(argv or sys.argv[1:])]),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "steps_per_worker": args.steps,
        "steps_per_s_1_worker": measure_steps(args.env, 1, args.steps, args.games),
        f"steps_per_s_{args.workers}_workers": measure_steps(args.env, args.workers, args.steps, args.games),
        "generation_s_per_game": measure_generation(args.env, args.gen_games),
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = args.env.replace("/", "_")
    (out / f"{stem}.json").write_text(json.dumps(result, indent=2))
    lines = [f"# Throughput: {args.env}", "", "| measure | value |", "|---|---|"]
    lines += [f"| {k} | {v:.3f} |" if isinstance(v, float) else f"| {k} | {v} |"
              for k, v in result.items() if k not in ("machine",)]
    (out / f"{stem}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
