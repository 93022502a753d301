"""Throughput: steps/s of a real env and of its twin, single and vectorised; game generation time.

``python -m wmgym.benchmarks.throughput --env TextWorld-v0 --workers 2``
``python -m wmgym.benchmarks.throughput --env TextWorld-v0 --model DIR --backends hf,openai --vector 4``

Real env (no model needed):

- steps/s of 1 worker process and of K worker processes (``--workers``), each
  building the env through its registered id and playing random admissible
  commands for ``--steps`` steps over ``--games`` games generated beforehand;
- steps/s of a ``gymnasium.vector.SyncVectorEnv`` of ``--vector`` copies in one
  process (ended rows reset onto the prepared games inside the timing, as in
  the single-env figure);
- game generation time per game, on fresh slots in a scratch ``WMGYM_HOME``
  (so cached games do not flatter it).

Twin (when a model is given, or the env's embedded default exists), for each
backend of ``--backends`` that is available here (``openai`` is measured
against a ``wmgym serve`` of the same model started on loopback; ``vllm``
needs ``pip install wmgym[gpu]``): steps/s of one ``WM-<env>``, and steps/s and
tokens/s of ``gym.make_vec("WM-<env>", num_envs=N)`` for each N of
``--twin-batch`` (one batched generation per vector step), beside the
arithmetic limit of this core (its measured matmul FLOP/s over the model's
FLOP per token). ``--core K`` pins the run to one core so that real and twin
figures share it. The per-step latency curve against history length is
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
    for game in range(n_games):  # load every game once first, as the vector measurement (run later) finds them
        env.reset(seed=seed, options={"game": game})
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


def _random_actions(rng: np.random.Generator, commands: list[list[str]]) -> list[str]:
    return [c[int(rng.integers(len(c)))] for c in commands]


def _commands(infos: dict[str, Any], rows: Any, into: list[list[str]]) -> None:
    """Copy the admissible commands of vector ``rows`` from ``infos`` into ``into``."""
    for i in np.flatnonzero(rows):
        into[i] = list(infos["admissible_commands"][i]) or ["look"]


def measure_vector(vec: gym.vector.VectorEnv, steps: int, n_games: int, seed: int = 0) -> float:
    """Env steps/s of a vector env playing random admissible commands for ``steps`` vector steps.

    Autoreset is off: ended rows are reset right away, inside the timing as in the single-env figure, onto one of
    the ``n_games`` prepared games. (Gymnasium's default NEXT_STEP autoreset would reset onto a random game of the
    whole split, which TextWorld generates and ALFWorld loads inside the timing, and count each reset as a step:
    that made the first SyncVectorEnv figures far lower than the single-env ones.)
    """
    rng = np.random.default_rng(seed)
    for game in range(n_games):  # every row loads every game once before the timing, as in the single figure
        vec.reset(seed=seed, options={"game": game})
    _, infos = vec.reset(seed=seed, options={"game": seed % n_games})
    commands: list[list[str]] = [["look"]] * vec.num_envs
    _commands(infos, np.ones(vec.num_envs, dtype=bool), commands)
    start = time.perf_counter()
    for t in range(steps):
        _, _, terminated, truncated, infos = vec.step(tuple(_random_actions(rng, commands)))
        _commands(infos, infos.get("_admissible_commands", np.ones(vec.num_envs, dtype=bool)), commands)
        done = np.logical_or(terminated, truncated)
        if done.any():
            _, infos = vec.reset(options={"reset_mask": done, "game": (seed + t + 1) % n_games})
            _commands(infos, done, commands)
    elapsed = time.perf_counter() - start
    vec.close()
    return vec.num_envs * steps / elapsed


def measure_twin_single(env_id: str, model: Any, steps: int, n_games: int, seed: int = 0) -> dict[str, float]:
    """Steps/s and mean step latency of one twin playing random reset-time commands."""
    env = gym.make(twin_id(env_id), model=model)
    rng = np.random.default_rng(seed)
    _, info = env.reset(seed=seed, options={"game": seed % n_games})
    latencies = []
    for i in range(steps):
        t0 = time.perf_counter()
        _, _, terminated, truncated, info = env.step(_random_actions(rng, [info["admissible_commands"] or ["look"]])[0])
        latencies.append(time.perf_counter() - t0)
        if terminated or truncated:
            _, info = env.reset(options={"game": (seed + i + 1) % n_games})
    env.close()
    return {"steps_per_s": steps / sum(latencies), "mean_step_ms": 1000 * sum(latencies) / len(latencies)}


class _Counting:
    """A world model that counts the tokens its ``step_batch`` generates (delegates everything)."""

    def __init__(self, wm: Any):
        self.wm, self.tokens, self.prompt_tokens, self.rows, self.drafted = wm, 0, 0, 0, 0

    def step_batch(self, handles: list[int], actions: list[str], *rest: Any) -> list[Any]:
        steps = self.wm.step_batch(handles, actions, *rest)
        self.tokens += sum(int(s.extra.get("completion_tokens", 0)) for s in steps)
        self.prompt_tokens += sum(int(s.extra.get("prompt_tokens", 0)) for s in steps)
        self.rows += len(steps)
        self.drafted += sum(int(s.extra.get("drafted_tokens", 0)) for s in steps)
        return steps

    def __getattr__(self, name: str) -> Any:
        return getattr(self.wm, name)


def measure_twin_vector(env_id: str, wm: Any, n: int, steps: int, n_games: int, seed: int = 0) -> dict[str, float]:
    """``gym.make_vec(WM-<env>, num_envs=n)``: one batched generation per vector step (see :func:`measure_vector`)."""
    vec = gym.make_vec(twin_id(env_id), num_envs=n, model=wm, autoreset_mode="Disabled")
    counting = vec.unwrapped.world_model = _Counting(wm)
    sps = measure_vector(vec, steps, n_games, seed)
    elapsed = n * steps / sps
    return {"steps_per_s": sps, "tokens_per_s": counting.tokens / elapsed,
            "mean_new_tokens": counting.tokens / max(counting.rows, 1),
            "mean_prompt_tokens": counting.prompt_tokens / max(counting.rows, 1),
            "drafted_share": counting.drafted / max(counting.tokens, 1)}


def matmul_flops(seconds: float = 0.3, size: int = 256) -> float:
    """Measured float32 matmul FLOP/s of this process's core(s) (``size``-cubed products, one torch thread)."""
    import torch

    a, b = torch.randn(size, size), torch.randn(size, size)
    for _ in range(3):
        a @ b
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        a @ b
        count += 1
    return 2 * size ** 3 * count / (time.perf_counter() - start)


def flop_per_token(model: Any, context: float) -> float:
    """Forward FLOP of one new token at ``context`` cached tokens: 2 per weight (embedding lookup excluded,
    the tied LM head counted) plus the attention's QK and AV products over the context."""
    cfg = model.config.get_text_config(decoder=True)
    embedding = model.get_input_embeddings().weight
    params = sum(p.numel() for p in model.parameters()) - embedding.numel()
    output = model.get_output_embeddings()
    head = embedding.numel() if output is not None and output.weight is embedding else 0  # tied: counted here
    heads = cfg.num_attention_heads
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // heads
    return 2.0 * (params + head) + 4.0 * cfg.num_hidden_layers * heads * head_dim * context


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


def measure_twins(env_id: str, model_dir: str, backends: list[str], batches: list[int], steps: int, n_games: int,
                  max_new_tokens: int, flops: float, prompt_lookup: int | None = None) -> dict[str, Any]:
    """Twin throughput per backend and vector size (``{"skipped": why}`` for unavailable backends)."""
    from wmgym.worldmodels import load_world_model

    out: dict[str, Any] = {}
    for backend in backends:
        server = None
        try:
            if backend == "hf":
                extra = {} if prompt_lookup is None else {"prompt_lookup": prompt_lookup}
                wm = load_world_model(model_dir, "hf", max_new_tokens=max_new_tokens, **extra)
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
            res: dict[str, Any] = {"single_env": measure_twin_single(env_id, wm, steps, n_games)}
            for n in batches:
                cell = measure_twin_vector(env_id, wm, n, steps, n_games)
                if backend == "hf":  # the arithmetic limit of the tokens this model generates here
                    per_token = flop_per_token(wm.model, cell["mean_prompt_tokens"] + cell["mean_new_tokens"] / 2)
                    cell["flop_per_token"] = per_token
                    cell["arithmetic_limit_tokens_per_s"] = flops / per_token
                res[f"make_vec_{n}"] = cell
                print(f"twin ({backend}) make_vec x{n}: {cell['steps_per_s']:.1f} steps/s, "
                      f"{cell['tokens_per_s']:.0f} tokens/s", flush=True)
            out[backend] = res
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
    parser.add_argument("--vector", type=int, default=4, help="copies in the real SyncVectorEnv measurement")
    parser.add_argument("--model", default=None, help="twin model directory (default: the env's embedded model "
                                                       "if trained; none: real env only)")
    parser.add_argument("--backends", default="hf,openai,vllm", help="twin backends to measure where available")
    parser.add_argument("--twin-batch", default="1,8,32,64", help="num_envs of the twin make_vec measurements")
    parser.add_argument("--twin-steps", type=int, default=16,
                        help="vector steps per twin measurement (N episode steps each); also the single twin's steps")
    parser.add_argument("--max-new-tokens", type=int, default=256, help="twin generation cap")
    parser.add_argument("--prompt-lookup", type=int, default=None,
                        help="hf backend: draft tokens per forward copied from the context (0: off; default: the "
                             "backend's, GenerationSettings.prompt_lookup)")
    parser.add_argument("--core", type=int, default=None,
                        help="pin this process (and its workers) to one CPU core, so all figures share it")
    add_common_args(parser)
    args = parser.parse_args(argv)
    batches = [int(x) for x in args.twin_batch.split(",") if x]
    if args.workers < 1 or args.vector < 1 or args.steps < 1 or not batches or min(batches) < 1:
        raise ValueError("--workers, --vector, --steps and every --twin-batch size must be >= 1")
    if args.core is not None:
        os.sched_setaffinity(0, {args.core})
    set_torch_threads()
    import wmgym  # noqa: F401
    from wmgym.worldmodels.loading import default_model_dir

    bench = BenchmarkRun("throughput", config=vars(args), seeds={"worker_w": "w", "vector": 0}, out=args.out,
                         run_name=args.run_name, envs=[args.env], argv=None if argv is None else
                         ["wmgym", "bench", "throughput", *argv])
    env = gym.make(args.env)
    env.unwrapped.prepare_games(env.unwrapped.split, list(range(args.games)), workers=args.workers, progress=False)
    env.close()
    vec = gym.vector.SyncVectorEnv([lambda: gym.make(args.env) for _ in range(args.vector)],
                                   autoreset_mode=gym.vector.AutoresetMode.DISABLED)
    real = {
        "steps_per_s_1_worker": measure_steps(args.env, 1, args.steps, args.games),
        f"steps_per_s_{args.workers}_workers": measure_steps(args.env, args.workers, args.steps, args.games),
        f"steps_per_s_vector_{args.vector}": measure_vector(vec, max(1, args.steps // args.vector), args.games),
        "generation_s_per_game": measure_generation(args.env, args.gen_games),
    }
    print(f"real {args.env}: " + ", ".join(f"{k} {fmt(v)}" for k, v in real.items()), flush=True)
    flops = matmul_flops()
    model = args.model
    if model is None and (default_model_dir(args.env) / "config.json").is_file():
        model = str(default_model_dir(args.env))
    twins = {}
    if model is not None:
        twins = measure_twins(args.env, model, [b for b in args.backends.split(",") if b], batches,
                              args.twin_steps, args.games, args.max_new_tokens, flops, args.prompt_lookup)
    rows = [["real", k, fmt(v)] for k, v in real.items()]
    rows.append(["this core", "matmul GFLOP/s (float32, 256^3)", fmt(flops / 1e9)])
    for backend, res in twins.items():
        if "skipped" in res:
            rows.append([f"twin ({backend})", "skipped", res["skipped"]])
            continue
        rows += [[f"twin ({backend})", f"single env {k}", fmt(v)] for k, v in res["single_env"].items()]
        for n in batches:
            rows += [[f"twin ({backend})", f"make_vec x{n} {k}", fmt(v)] for k, v in res[f"make_vec_{n}"].items()]
    results = {"env": args.env, "real": real, "twins": twins, "twin_model": model, "matmul_flops": flops,
               "table": {"headers": ["env", "measure", "value"], "rows": rows}}
    measured = {b: r for b, r in twins.items() if "skipped" not in r}
    series = {"real": [real["steps_per_s_1_worker"]] * len(batches)}
    series.update({f"twin {b}": [r[f"make_vec_{n}"]["steps_per_s"] for n in batches] for b, r in measured.items()})
    bar_plot(bench.add_figure("steps_per_s.png"), [f"N={n}" for n in batches], series,
             title=f"{args.env}: steps/s (real: one env; twin: make_vec of N)", ylabel="env steps per second")
    pinned = f"pinned to core {args.core}" if args.core is not None else "not pinned (use --core K)"
    text = "\n".join([
        f"Steps/s of `{args.env}` and its twin (model: {model or 'none given; real env only'}), one process, "
        f"{pinned}, one torch thread. Real env: random admissible commands, resets of the {args.games} prepared "
        "games inside the timing. Twin: `gym.make_vec(WM-<env>, num_envs=N)`, one batched generation per vector "
        "step, the same play. The arithmetic limit is this core's measured matmul FLOP/s over the model's FLOP "
        "per generated token at the measured context; the gap to it is per-token framework overhead and memory "
        "traffic. The latency curve against history length is `wmgym bench latency`.", "",
        md_table(["env", "measure", "value"], rows), "", "![steps/s](steps_per_s.png)"])
    bench.finish(results, text)
    print(f"results in {bench.path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
