"""WebShop-v0: catalog build, reset/s, steps/s of random and expert play, search latency, agent success.

``python -m wmgym.benchmarks.engines.webshop [--steps 2000] [--resets 500] [--goals 200]``
(or ``wmgym bench engine --env WebShop-v0``), one process, one core:

1. Catalog: generating the default catalog's raw files, and loading it (products,
   BM25 index, prices, goals) in a fresh process state.
2. Search: a cold query (not seen before: BM25 scores the catalog) and a repeated one;
   the index is built once per catalog, never per search.
3. ``reset()`` per second on random test goals.
4. Steps/s of random play (uniform over ``info["admissible_commands"]``, reset on
   purchase or the 15-step limit) and of the expert (``expert_action()``), through the
   registered id with its TimeLimit.
5. Success (reward 1) and mean reward of the expert and the scripted agent on the first
   ``--goals`` test goals.

Results go to ``results/webshop/<timestamp>/`` (``result.json`` + ``report.md``) or ``--out``.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import gymnasium as gym
import numpy as np

from wmgym.benchmarks.common import BenchmarkRun, add_common_args, md_table

ENV_ID = "WebShop-v0"


def measure_catalog() -> dict[str, float]:
    """Seconds to generate the raw catalog, to load it (index and goals included) and to search it."""
    from wmgym.envs.webshop import catalog, env as webshop

    start = time.perf_counter()
    catalog.generate_raw(webshop.NUM_PRODUCTS, webshop.CATALOG_SEED)
    generate_s = time.perf_counter() - start
    webshop._SHOPS.clear()
    start = time.perf_counter()
    shop = webshop.load_shop()
    load_s = time.perf_counter() - start
    queries = [f"{w} {k}" for w in ("organic", "black", "long lasting", "easy assemble", "waterproof")
               for k in ("shampoo", "tea", "jeans", "chair", "speaker", "cable")]
    start = time.perf_counter()
    for q in queries:
        shop.engine.search(q)
    cold_ms = 1000 * (time.perf_counter() - start) / len(queries)
    start = time.perf_counter()
    for q in queries:
        shop.engine.search(q)
    warm_ms = 1000 * (time.perf_counter() - start) / len(queries)
    return {"generate_s": generate_s, "load_s": load_s, "search_cold_ms": cold_ms, "search_repeat_ms": warm_ms,
            "products": len(shop.products), "train_goals": len(shop.splits["train"]),
            "test_goals": len(shop.splits["test"])}


def measure_resets(env: gym.Env, n: int, seed: int) -> float:
    start = time.perf_counter()
    for i in range(n):
        env.reset(seed=seed + i)
    return n / (time.perf_counter() - start)


def measure_random(env: gym.Env, steps: int, seed: int) -> dict[str, float]:
    """Steps/s of uniform random admissible commands (resets not timed)."""
    rng = np.random.default_rng(seed)
    _, info = env.reset(seed=seed)
    elapsed, episodes = 0.0, 0
    for _ in range(steps):
        commands = info["admissible_commands"]
        action = commands[int(rng.integers(len(commands)))]
        start = time.perf_counter()
        _, _, terminated, truncated, info = env.step(action)
        elapsed += time.perf_counter() - start
        if terminated or truncated:
            episodes += 1
            _, info = env.reset()
    return {"steps_per_s": steps / elapsed, "episodes": episodes}


def measure_agent(env: gym.Env, goals: int, seed: int, agent: Any = None) -> dict[str, float]:
    """Steps/s (env steps only), success and mean reward of the expert (``agent=None``) or ``agent``."""
    elapsed, steps, wins, rewards = 0.0, 0, 0, 0.0
    for game in range(goals):
        observation, info = env.reset(seed=seed + game, options={"game": game, "split": "test"})
        if agent is not None:
            agent.reset(observation, info, seed + game)
        done, reward = False, 0.0
        while not done:
            action = env.unwrapped.expert_action() if agent is None else agent.act(observation, info)
            start = time.perf_counter()
            observation, reward, terminated, truncated, info = env.step(action)
            elapsed += time.perf_counter() - start
            steps, done = steps + 1, terminated or truncated
        wins += bool(info["won"])
        rewards += reward
    return {"steps_per_s": steps / elapsed, "success": wins / goals, "mean_reward": rewards / goals,
            "mean_steps": steps / goals, "goals": goals}


def run(steps: int, resets: int, goals: int, seed: int) -> dict[str, Any]:
    from wmgym.agents.scripted.webshop import WebShopAgent

    results: dict[str, Any] = {"catalog": measure_catalog()}
    env = gym.make(ENV_ID, split="test")
    results["resets_per_s"] = measure_resets(env, resets, seed)
    results["random"] = measure_random(env, steps, seed)
    goals = min(goals, env.unwrapped.num_games("test"))
    results["expert"] = measure_agent(env, goals, seed)
    results["scripted"] = measure_agent(env, goals, seed, WebShopAgent())
    env.close()
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m wmgym.benchmarks.engines.webshop",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=2000, help="random-play steps timed")
    parser.add_argument("--resets", type=int, default=500, help="resets timed")
    parser.add_argument("--goals", type=int, default=200, help="test goals the expert and scripted agent play")
    add_common_args(parser)
    args = parser.parse_args(argv)
    for name in ("steps", "resets", "goals"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name} must be >= 1, got {getattr(args, name)}")
    bench = BenchmarkRun("webshop", config=vars(args), seeds={"base": args.seed}, out=args.out, envs=["WebShop-v0"],
                         run_name=args.run_name,
                         argv=None if argv is None else ["python", "-m", "wmgym.benchmarks.engines.webshop", *argv])
    results = run(args.steps, args.resets, args.goals, args.seed)
    c = results["catalog"]
    rows = [[name, f"{r['steps_per_s']:.0f}", f"{100 * r['success']:.1f}%" if "success" in r else "-",
             f"{r['mean_reward']:.3f}" if "mean_reward" in r else "-"]
            for name, r in (("random", results["random"]), ("expert", results["expert"]),
                            ("scripted", results["scripted"]))]
    markdown = "\n\n".join([
        f"Catalog: {c['products']} products, {c['train_goals']} train / {c['test_goals']} test goals; generated in "
        f"{c['generate_s']:.2f} s, loaded (BM25 index and goals) in {c['load_s']:.2f} s. A new query takes "
        f"{c['search_cold_ms']:.2f} ms, a repeated one {c['search_repeat_ms']:.3f} ms.",
        f"`reset()`: {results['resets_per_s']:.0f}/s. Steps/s count `step` calls only; search results are "
        "remembered per query, so the scripted agent (played after the expert, on the same goals) mostly "
        "repeats known queries.",
        md_table(["play", "steps/s", f"success ({results['expert']['goals']} test goals)", "mean reward"], rows),
    ])
    path = bench.finish(results, markdown, title="WebShop-v0 engine speed")
    print(f"catalog: generate {c['generate_s']:.2f} s, load {c['load_s']:.2f} s, "
          f"search {c['search_cold_ms']:.2f} ms new / {c['search_repeat_ms']:.3f} ms repeated")
    print(f"resets/s {results['resets_per_s']:.0f}")
    for name, cells in zip(("random", "expert", "scripted"), rows):
        print(f"{name:<9} {cells[1]:>6} steps/s  success {cells[2]:>6}  mean reward {cells[3]}")
    print(f"results in {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
