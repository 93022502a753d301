"""Tau2-*-v0: gold replay over every task (the expert's reward), reset/s and steps/s, scripted agent's reward.

``python -m wmgym.benchmarks.engines.tau2 [--domains retail airline telecom] [--tasks N]``
(or ``wmgym bench engine --env Tau2-Retail-v0``), one process, one core:

1. The expert (the task's gold calls, then a message with what the task must communicate) on every task of
   both splits: success (tau2 reward 1) over the tasks that have gold actions and over all; seconds per episode
   (the evaluator's replay included).
2. ``reset()`` per second and steps/s of the expert's tool calls.
3. The scripted agent's success on the held-out split.

Results go to ``results/tau2/<timestamp>/`` (``result.json`` + ``report.md``) or ``--out``.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import gymnasium as gym

from wmgym.benchmarks.common import BenchmarkRun, add_common_args, md_table

DOMAIN_IDS = {"retail": "Tau2-Retail-v0", "airline": "Tau2-Airline-v0", "telecom": "Tau2-Telecom-v0"}


def play(env: gym.Env, split: str, game: int, seed: int, agent: Any = None) -> tuple[float, int, float]:
    """``(reward, steps, seconds in step)`` of one episode of the expert (``agent=None``) or ``agent``."""
    observation, info = env.reset(seed=seed, options={"game": game, "split": split})
    if agent is not None:
        agent.reset(observation, info, seed)
    done, reward, steps, elapsed = False, 0.0, 0, 0.0
    while not done:
        action = env.unwrapped.expert_action() if agent is None else agent.act(observation, info)
        start = time.perf_counter()
        observation, reward, terminated, truncated, info = env.step(action)
        elapsed += time.perf_counter() - start
        steps, done = steps + 1, terminated or truncated
    return float(reward), steps, elapsed


def run_domain(env_id: str, tasks: int | None, seed: int) -> dict[str, Any]:
    from wmgym.agents.scripted.tau2 import Tau2Agent
    from wmgym.envs.tau2 import engine

    env = gym.make(env_id)
    domain = env.unwrapped.data
    expert = {"with_gold": [0, 0], "all": [0, 0], "steps": 0, "seconds": 0.0}
    for split in ("train", "test"):
        for game, task in enumerate(domain.tasks[split][:tasks]):
            reward, steps, elapsed = play(env, split, game, seed + game)
            won = int(reward >= 1.0 - 1e-9)
            expert["all"] = [expert["all"][0] + won, expert["all"][1] + 1]
            if engine.gold_calls(task):
                expert["with_gold"] = [expert["with_gold"][0] + won, expert["with_gold"][1] + 1]
            expert["steps"] += steps
            expert["seconds"] += elapsed
    start = time.perf_counter()
    for i in range(50):
        env.reset(seed=seed + i)
    resets_per_s = 50 / (time.perf_counter() - start)
    scripted = [play(env, "test", g, seed + g, Tau2Agent())[0] for g in range(len(domain.tasks["test"][:tasks]))]
    env.close()
    return {"expert_success_with_gold": expert["with_gold"][0] / max(1, expert["with_gold"][1]),
            "expert_wins_with_gold": expert["with_gold"], "expert_success_all": expert["all"][0] / expert["all"][1],
            "expert_wins_all": expert["all"], "seconds_per_episode": expert["seconds"] / expert["all"][1],
            "expert_steps_per_s": expert["steps"] / expert["seconds"], "resets_per_s": resets_per_s,
            "scripted_success_test": sum(r >= 1.0 - 1e-9 for r in scripted) / max(1, len(scripted))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m wmgym.benchmarks.engines.tau2",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--domains", nargs="+", default=list(DOMAIN_IDS), choices=list(DOMAIN_IDS))
    parser.add_argument("--tasks", type=int, default=None, help="first N tasks of each split (default: all)")
    parser.add_argument("--env", default=None, help="one Tau2 id instead of --domains")
    add_common_args(parser)
    args = parser.parse_args(argv)
    ids = [args.env] if args.env else [DOMAIN_IDS[d] for d in args.domains]
    bench = BenchmarkRun("tau2", config=vars(args), seeds={"base": args.seed}, out=args.out, envs=ids,
                         run_name=args.run_name,
                         argv=None if argv is None else ["python", "-m", "wmgym.benchmarks.engines.tau2", *argv])
    results = {env_id: run_domain(env_id, args.tasks, args.seed) for env_id in ids}
    rows = [[env_id, f"{r['expert_wins_with_gold'][0]}/{r['expert_wins_with_gold'][1]}",
             f"{r['expert_wins_all'][0]}/{r['expert_wins_all'][1]}", f"{r['seconds_per_episode']:.2f}",
             f"{r['expert_steps_per_s']:.1f}", f"{r['resets_per_s']:.0f}", f"{100 * r['scripted_success_test']:.1f}%"]
            for env_id, r in results.items()]
    headers = ["env", "expert wins (tasks with gold actions)", "expert wins (all)", "s / expert episode",
               "expert steps/s", "resets/s", "scripted success (test)"]
    path = bench.finish(results, md_table(headers, rows), title="Tau2 engine speed and gold replay")
    for cells in rows:
        print("  ".join(cells))
    print(f"results in {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
