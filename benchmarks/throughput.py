"""Throughput: steps/s of a real env and of its twin, single and vectorised; game generation time.

``python -m wmgym.benchmarks.throughput --env TextWorld-v0 --workers 2``
``python -m wmgym.benchmarks.throughput --env TextWorld-v0 --model DIR --backends hf,openai --vector 4``

Real env (no model needed):

- steps/s of 1 worker process and of K worker processes (``--workers``), each
  building the env through its registered id and playing random admissible
  commands for ``--steps`` steps over ``--games`` games generated beforehand;
- steps/s of a ``gymnasium.vector.SyncVectorEnv`` of ``--vector`` copies in one
  process;
- game generation time per game, on fresh slots in a scratch ``WMGYM_HOME``
  (so cached games do not flatter it).

Twin (when a model is given, or the env's embedded default exists), for each
backend of ``--backends`` that is available here (``openai`` is measured
against a ``wmgym serve`` of the same model started on loopback; ``vllm``
needs ``pip install wmgym[gpu]``): steps/s of one ``WM-<env>``, of a
``SyncVectorEnv`` of ``--vector`` twins sharing the model (stepped one after
another), and of ``step_batch`` over ``--vector`` episodes (what batched
stepping gains). The per-step latency curve against history length is
``wmgym bench latency`` (the world-model benchmark).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import re
import subprocess
import sys
import tempfile
import time
from typing import Any

import gymnasium as gym
import numpy as np

from wmgym.benchmarks.common import BenchmarkRun, add_common_args, bar_plot, fmt, md_table, set_torch_threads
from wmgym.envs import TextEnv, twin_id


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
    if games < 1 or type(env.unwrapped).prepare_games is TextEnv.prepare_games:
        return None  # the env keeps the base class's no-op: it has no games to generate
    prepare = env.unwrapped.prepare_games
    old = os.environ.get("WMGYM_HOME")
    with tempfile.TemporaryDirectory() as scratch:
        os.environ["WMGYM_HOME"] = scratch
        try:
            start = time.perf_counter()
            prepare(env.unwrapped.splits[-1], list(range(games)), workers=1, progress=False)
            return (time.perf_counter() - start) / games
        finally:
            if old is None:
                os.environ.pop("WMGYM_HOME")
            else:
                os.environ["WMGYM_HOME"] = old


def _random_actions(rng: np.random.Generator, infos: list[dict[str, Any]]) -> list[str]:
    out = []
    for info in infos:
        commands = list(info.get("admissible_commands") or ["look"])
        out.append(commands[int(rng.integers(len(commands)))])
    return out


def measure_vector(make_env, copies: int, steps: int, n_games: int, seed: int = 0) -> float:
    """Env steps/s of a ``SyncVectorEnv`` of ``copies`` envs (``steps`` vector steps after a warm-up)."""
    vec = gym.vector.SyncVectorEnv([make_env for _ in range(copies)])
    rng = np.random.default_rng(seed)
    _, infos = vec.reset(seed=seed, options={"game": seed % n_games})
    per_env = [{k: infos[k][i] for k in ("admissible_commands",) if k in infos} for i in range(copies)]
    start = time.perf_counter()
    for _ in range(steps):
        _, _, _, _, infos = vec.step(tuple(_random_actions(rng, per_env)))
        if "admissible_commands" in infos:
            per_env = [{"admissible_commands": infos["admissible_commands"][i]} for i in range(copies)]
    elapsed = time.perf_counter() - start
    vec.close()
    return copies * steps / elapsed


def measure_twin_single(env_id: str, model: Any, steps: int, n_games: int, seed: int = 0) -> dict[str, float]:
    """Steps/s and mean step latency of one twin playing random reset-time commands."""
    env = gym.make(twin_id(env_id), model=model)
    rng = np.random.default_rng(seed)
    _, info = env.reset(seed=seed, options={"game": seed % n_games})
    latencies = []
    for i in range(steps):
        t0 = time.perf_counter()
        _, _, terminated, truncated, info = env.step(_random_actions(rng, [info])[0])
        latencies.append(time.perf_counter() - t0)
        if terminated or truncated:
            _, info = env.reset(options={"game": (seed + i + 1) % n_games})
    env.close()
    return {"steps_per_s": steps / sum(latencies), "mean_step_ms": 1000 * sum(latencies) / len(latencies)}


def measure_step_batch(env_id: str, wm: Any, batch: int, steps: int, n_games: int, seed: int = 0) -> float:
    """Episode steps/s of ``wm.step_batch`` over ``batch`` episodes started from real resets."""
    real = gym.make(env_id)
    contexts, commands = [], []
    for i in range(batch):
        _, info = real.reset(seed=seed + i, options={"game": (seed + i) % n_games})
        contexts.append(info["init_context"])
        commands.append(list(info["admissible_commands"] or ["look"]))
    real.close()
    rng = np.random.default_rng(seed)
    handles = [wm.start(c) for c in contexts]
    try:
        start = time.perf_counter()
        for _ in range(steps):
            wm.step_batch(handles, [cmds[int(rng.integers(len(cmds)))] for cmds in commands])
        elapsed = time.perf_counter() - start
    finally:
        for h in handles:
            wm.end(h)
    return batch * steps / elapsed


class _Server:
    """``wmgym serve`` of a model on a free loopback port, for the openai backend."""

    def __init__(self, model: str, max_new_tokens: int):
        self.proc = subprocess.Popen([sys.executable, "-m", "wmgym.cli", "serve", "--model", model, "--port", "0",
                                      "--served-model-name", "bench", "--max-new-tokens", str(max_new_tokens)],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        line = ""
        for line in self.proc.stdout:
            if "serving" in line:
                break
        m = re.search(r"(http://[\d.]+:\d+/v1)", line)
        if not m:
            self.close()
            raise RuntimeError(f"wmgym serve did not start: {line.strip()!r}")
        self.url = m.group(1)

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


def measure_twins(env_id: str, model_dir: str, backends: list[str], vector: int, steps: int, n_games: int,
                  max_new_tokens: int) -> dict[str, Any]:
    """Twin throughput per backend (``{"skipped": why}`` for unavailable ones)."""
    from wmgym.worldmodels import load_world_model

    out: dict[str, Any] = {}
    for backend in backends:
        server = None
        try:
            if backend == "hf":
                wm = load_world_model(model_dir, "hf", max_new_tokens=max_new_tokens)
            elif backend == "openai":
                server = _Server(model_dir, max_new_tokens)
                wm = load_world_model("bench", "openai", base_url=server.url, max_new_tokens=max_new_tokens)
            elif backend == "vllm":
                try:
                    import vllm  # noqa: F401
                except ImportError:
                    out[backend] = {"skipped": "vllm is not installed here (pip install wmgym[gpu])"}
                    continue
                wm = load_world_model(model_dir, "vllm", max_new_tokens=max_new_tokens)
            else:
                raise ValueError(f"unknown backend {backend!r}; valid backends: ['hf', 'openai', 'vllm']")
            res = measure_twin_single(env_id, wm, steps, n_games)
            res[f"vector_{vector}_steps_per_s"] = measure_vector(
                lambda: gym.make(twin_id(env_id), model=wm), vector, max(1, steps // vector), n_games)
            res[f"step_batch_{vector}_steps_per_s"] = measure_step_batch(env_id, wm, vector,
                                                                          max(1, steps // vector), n_games)
            out[backend] = res
            print(f"twin ({backend}): {res['steps_per_s']:.2f} steps/s single, "
                  f"{res[f'vector_{vector}_steps_per_s']:.2f} SyncVectorEnv x{vector}, "
                  f"{res[f'step_batch_{vector}_steps_per_s']:.2f} step_batch x{vector}", flush=True)
        finally:
            if server is not None:
                server.close()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="wmgym bench throughput", description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", default="TextWorld-v0", help="registered real env id")
    parser.add_argument("--workers", type=int, default=2, help="K for the multi-process figure")
    parser.add_argument("--steps", type=int, default=300, help="real-env steps per worker")
    parser.add_argument("--games", type=int, default=8, help="games played (generated before timing)")
    parser.add_argument("--gen-games", type=int, default=5, help="fresh games timed for generation (0: skip)")
    parser.add_argument("--vector", type=int, default=4, help="copies in the vectorised measurements")
    parser.add_argument("--model", default=None, help="twin model directory (default: the env's embedded model "
                                                       "if trained; none: real env only)")
    parser.add_argument("--backends", default="hf,openai,vllm", help="twin backends to measure where available")
    parser.add_argument("--twin-steps", type=int, default=24, help="twin steps per measurement")
    parser.add_argument("--max-new-tokens", type=int, default=256, help="twin generation cap")
    add_common_args(parser)
    args = parser.parse_args(argv)
    if args.workers < 1 or args.vector < 1 or args.steps < 1:
        raise ValueError("--workers, --vector and --steps must be >= 1")
    set_torch_threads()
    import wmgym  # noqa: F401
    from wmgym.worldmodels.loading import default_model_dir

    bench = BenchmarkRun("throughput", config=vars(args), seeds={"worker_w": "w", "vector": 0}, out=args.out,
                         run_name=args.run_name, argv=None if argv is None else ["wmgym", "bench", "throughput",
                                                                                  *argv])
    env = gym.make(args.env)
    env.unwrapped.prepare_games(env.unwrapped.split, list(range(args.games)), workers=args.workers, progress=False)
    env.close()
    real = {
        "steps_per_s_1_worker": measure_steps(args.env, 1, args.steps, args.games),
        f"steps_per_s_{args.workers}_workers": measure_steps(args.env, args.workers, args.steps, args.games),
        f"steps_per_s_vector_{args.vector}": measure_vector(lambda: gym.make(args.env), args.vector,
                                                            max(1, args.steps // args.vector), args.games),
        "generation_s_per_game": measure_generation(args.env, args.gen_games),
    }
    print(f"real {args.env}: " + ", ".join(f"{k} {fmt(v)}" for k, v in real.items()), flush=True)
    model = args.model
    if model is None and (default_model_dir(args.env) / "config.json").is_file():
        model = str(default_model_dir(args.env))
    twins = {}
    if model is not None:
        twins = measure_twins(args.env, model, [b for b in args.backends.split(",") if b], args.vector,
                              args.twin_steps, args.games, args.max_new_tokens)
    rows = [["real", k, fmt(v)] for k, v in real.items()]
    for backend, res in twins.items():
        rows += [[f"twin ({backend})", k, fmt(v) if not isinstance(v, str) else v] for k, v in res.items()]
    results = {"env": args.env, "real": real, "twins": twins, "twin_model": model,
               "table": {"headers": ["env", "measure", "value"], "rows": rows}}
    groups = ["real"] + [f"twin {b}" for b, r in twins.items() if "skipped" not in r]
    single = [real["steps_per_s_1_worker"]] + [r["steps_per_s"] for r in twins.values() if "skipped" not in r]
    vec = [real[f"steps_per_s_vector_{args.vector}"]] + [r[f"vector_{args.vector}_steps_per_s"]
                                                          for r in twins.values() if "skipped" not in r]
    bar_plot(bench.add_figure("steps_per_s.png"), groups, {"single": single, f"SyncVectorEnv x{args.vector}": vec},
             title=f"{args.env}: steps/s", ylabel="env steps per second")
    text = "\n".join([
        f"Steps/s of `{args.env}` and its twin (model: {model or 'none given; real env only'}). Twin steps "
        "generate an observation each; their cost grows with its length and the model size. The latency "
        "curve against history length is `wmgym bench latency`.", "",
        md_table(["env", "measure", "value"], rows), "", "![steps/s](steps_per_s.png)"])
    bench.finish(results, text)
    print(f"results in {bench.path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
