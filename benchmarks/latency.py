"""World-model step latency against history length, and batched throughput (hf backend).

``python -m wmgym.benchmarks.latency [--env TextWorld-v0] [--model DIR] [--out DIR]``

Plays twin episodes (``WM-<env>`` built through its registered id) with
random admissible commands from the real reset, and times every step with the
KV cache kept between steps (reuse on) and with the prompt recomputed each step
(reuse off). A probe at ``h`` turns is the step taken with ``h`` turns already
in the chat (``h=0`` also prefills the system prompt). Then it times
``step_batch`` over 1, 4 and 8 episodes, beside stepping the same episodes one
by one.

The model is ``--model``, else the env's trained default at
``WMGYM_HOME/models/<env>`` when present, else a from-scratch tiny Qwen2 (a
few M parameters, random weights, tokenizer trained on the env's reset texts).
A random model rarely ends its turn, so every step generates
``--max-new-tokens`` tokens: the cost of a step then differs only by history.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from wmgym.envs import twin_id


@dataclasses.dataclass
class LatencyConfig:
    """Settings of one latency run."""

    env: str = "TextWorld-v0"
    """Real env id; its twin WM-<env> is played."""
    model: str | None = None
    """World model dir (default: the env's trained default, else a from-scratch tiny Qwen2)."""
    probes: tuple[int, ...] = (0, 1, 10, 30, 50)
    """History lengths (turns) at which step latency is reported."""
    episodes: int = 2
    """Episodes per cache setting."""
    window: int = 3
    """Steps per probe: probe h takes the median over steps h .. h+window-1 of every episode."""
    max_new_tokens: int = 32
    """Token cap per generated observation."""
    batch_sizes: tuple[int, ...] = (1, 4, 8)
    """Episodes stepped together in the throughput part."""
    batch_steps: int = 4
    """Timed steps per batch size (after one warm-up step)."""
    seed: int = 0
    """Seed of games and commands (episode k uses game k and seed + k)."""
    compare: bool = True
    """Also time reuse off (recomputing the prompt each step; slow for big models and long histories)."""
    tiny_hidden: int = 256
    """Hidden size of the from-scratch model (used when no model is given or trained)."""
    tiny_layers: int = 4
    """Layers of the from-scratch model."""

    def __post_init__(self) -> None:
        if not self.probes or min(self.probes) < 0:
            raise ValueError(f"probes must be non-negative turn counts, got {self.probes}")
        if min(self.episodes, self.window, self.batch_steps, self.max_new_tokens) < 1:
            raise ValueError("episodes, window, batch_steps and max_new_tokens must be >= 1")
        if not self.batch_sizes or min(self.batch_sizes) < 1:
            raise ValueError(f"batch_sizes must be >= 1, got {self.batch_sizes}")


def tiny_model_for(env_id: str, out_dir: Path, seed: int = 0, hidden: int = 256, layers: int = 4) -> Path:
    """A from-scratch Qwen2 (~5M parameters at the defaults) whose tokenizer is trained on ``env_id``'s resets."""
    from wmgym.training.tiny import build_tiny_model

    env = gym.make(env_id)
    texts = []
    for game in range(4):
        obs, info = env.reset(seed=seed + game, options={"game": game})
        texts += [info["init_context"], obs, *info["admissible_commands"]]
    env.close()
    return build_tiny_model(out_dir, texts * 5, vocab_size=2000, seed=seed, hidden_size=hidden, layers=layers,
                            heads=hidden // 64, kv_heads=max(1, hidden // 128), intermediate_size=3 * hidden,
                            max_positions=8192)


def resolve_model(cfg: LatencyConfig, scratch: Path) -> tuple[Path, str]:
    from wmgym.worldmodels.loading import default_model_dir

    if cfg.model:
        return Path(cfg.model), "given"
    default = default_model_dir(cfg.env)
    if (default / "config.json").is_file():
        return default, "trained default"
    model = tiny_model_for(cfg.env, scratch / "tiny", cfg.seed, cfg.tiny_hidden, cfg.tiny_layers)
    return model, "from-scratch tiny (random weights)"


def episode_latencies(env_id: str, wm: Any, turns: int, seed: int, game: int) -> list[dict[str, float]]:
    """Time ``turns`` steps of one twin episode; one record per step."""
    env = gym.make(twin_id(env_id), model=wm)
    _, info = env.reset(seed=seed, options={"game": game})
    twin = env.unwrapped  # past TimeLimit: the probe may go beyond the env's step limit
    commands = info["admissible_commands"] or ["look"]
    rng = np.random.default_rng(seed)
    records = []
    for _ in range(turns):
        action = commands[int(rng.integers(len(commands)))]
        start, cpu = time.perf_counter(), time.process_time()
        twin.step(action)
        ms, cpu_ms = 1000 * (time.perf_counter() - start), 1000 * (time.process_time() - cpu)
        step = twin.last_step
        records.append({"ms": ms, "cpu_ms": cpu_ms, "new_tokens": step.extra["completion_tokens"],
                        "prompt_tokens": step.extra["prompt_tokens"]})
    env.close()
    return records


def history_latency(cfg: LatencyConfig, wm: Any) -> dict[str, Any]:
    """Per-probe median latency (wall and process CPU time) over a window of steps of every episode."""
    turns = max(cfg.probes) + cfg.window
    runs = [episode_latencies(cfg.env, wm, turns, cfg.seed + k, k) for k in range(cfg.episodes)]
    out = {}
    for h in cfg.probes:
        recs = [run[i] for run in runs for i in range(h, h + cfg.window) if h > 0 or i == 0]
        toks = statistics.median(r["new_tokens"] for r in recs)
        ms = statistics.median(r["ms"] for r in recs)
        out[str(h)] = {"ms": ms, "cpu_ms": statistics.median(r["cpu_ms"] for r in recs), "new_tokens": toks,
                       "ms_per_token": ms / max(toks, 1), "samples": len(recs),
                       "prompt_tokens": statistics.median(r["prompt_tokens"] for r in recs)}
    return out


def batch_throughput(cfg: LatencyConfig, wm: Any) -> dict[str, Any]:
    """Steps/s of ``step_batch`` over n episodes, and of stepping them one by one."""
    out = {}
    for n in cfg.batch_sizes:
        envs = [gym.make(twin_id(cfg.env), model=wm) for _ in range(n)]
        handles, commands = [], []
        for i, env in enumerate(envs):
            _, info = env.reset(seed=cfg.seed + i, options={"game": i})
            handles.append(env.unwrapped.handle)
            commands.append(info["admissible_commands"] or ["look"])
        rng = np.random.default_rng(cfg.seed)

        def actions() -> list[str]:
            return [c[int(rng.integers(len(c)))] for c in commands]

        wm.step_batch(handles, actions())  # warm-up: prefills the system prompts
        start = time.perf_counter()
        tokens = 0
        for _ in range(cfg.batch_steps):
            tokens += sum(s.extra["completion_tokens"] for s in wm.step_batch(handles, actions()))
        batched = time.perf_counter() - start
        result = {"batched_steps_per_s": n * cfg.batch_steps / batched, "batched_tokens_per_s": tokens / batched}
        if n > 1:
            start = time.perf_counter()
            for _ in range(cfg.batch_steps):
                for h, a in zip(handles, actions()):
                    wm.step(h, a)
            result["one_by_one_steps_per_s"] = n * cfg.batch_steps / (time.perf_counter() - start)
            result["speedup"] = result["batched_steps_per_s"] / result["one_by_one_steps_per_s"]
        out[str(n)] = result
        for env in envs:
            env.close()
    return out


def run(cfg: LatencyConfig, out: str | None = None, run_name: str | None = None,
        argv: list[str] | None = None) -> dict[str, Any]:
    import torch

    import wmgym  # noqa: F401 - registers ids
    from wmgym.benchmarks.common import BenchmarkRun, fmt, line_plot, md_table
    from wmgym.worldmodels.hf import HFWorldModel

    torch.set_num_threads(1)
    bench = BenchmarkRun("latency", config=cfg, seeds={"seed": cfg.seed}, out=out, run_name=run_name, argv=argv)
    with tempfile.TemporaryDirectory(prefix="wmgym-latency-") as scratch:
        model_dir, source = resolve_model(cfg, Path(scratch))
        models = {reuse: HFWorldModel(model_dir, reuse_cache=reuse, max_new_tokens=cfg.max_new_tokens)
                  for reuse in ((True, False) if cfg.compare else (True,))}
        params = sum(p.numel() for p in models[True].model.parameters())
        history = {("on" if reuse else "off"): history_latency(cfg, wm) for reuse, wm in models.items()}
        batches = batch_throughput(cfg, models[True])
    first = str(min(h for h in cfg.probes if h > 0)) if any(h > 0 for h in cfg.probes) else "0"
    last = str(max(cfg.probes))
    nan = {"ms": float("nan"), "cpu_ms": float("nan")}
    on, off = history["on"], history.get("off", {str(h): nan for h in cfg.probes})
    ratio = on[last]["ms"] / on[first]["ms"]
    cpu_ratio = on[last]["cpu_ms"] / on[first]["cpu_ms"]
    # A trained model says more in some states than others: per generated token, the history's own cost shows.
    token_ratio = on[last]["ms_per_token"] / on[first]["ms_per_token"]
    results = {"model": str(model_dir), "model_source": source, "parameters": params, "history": history,
               "batch": batches, "ratio_last_to_first_with_reuse": ratio,
               "cpu_ratio_last_to_first_with_reuse": cpu_ratio, "ratio_probes": [int(first), int(last)],
               "ms_per_token_ratio_last_to_first_with_reuse": token_ratio,
               "goal_ratio_at_most": 1.3, "goal_met": ratio <= 1.3}
    rows = [[h, on[str(h)]["prompt_tokens"], on[str(h)]["new_tokens"], on[str(h)]["ms"], on[str(h)]["cpu_ms"],
             off[str(h)]["ms"], off[str(h)]["cpu_ms"], off[str(h)]["cpu_ms"] / on[str(h)]["cpu_ms"]]
            for h in cfg.probes]
    headers = ["turns of history", "prompt tokens", "new tokens", "ms/step reuse on", "CPU ms reuse on",
               "ms/step reuse off", "CPU ms reuse off", "off/on (CPU)"]
    results["table"] = {"headers": headers, "rows": rows}
    batch_rows = [[n, b["batched_steps_per_s"], b.get("one_by_one_steps_per_s"), b.get("speedup"),
                   b["batched_tokens_per_s"]] for n, b in batches.items()]
    fig = bench.add_figure("latency.png")
    line_plot(fig, {f"reuse {k}": (list(cfg.probes), [history[k][str(h)]["ms"] for h in cfg.probes])
                    for k in history},
              title=f"{twin_id(cfg.env)} step latency ({params / 1e6:.1f}M params, {cfg.max_new_tokens} new tokens)",
              xlabel="turns of history", ylabel="ms per step")
    markdown = "\n".join([
        f"Model: `{model_dir}` ({source}, {params / 1e6:.2f}M parameters), hf backend, CPU, 1 torch thread, "
        f"greedy, max_new_tokens={cfg.max_new_tokens}. Each cell: median over {cfg.window} steps x "
        f"{cfg.episodes} episodes (h=0: the first step, which also prefills the system prompt). Wall ms and this "
        "process's CPU ms (robust to other jobs on a shared machine).", "",
        md_table(headers, rows), "",
        f"Step at {last} turns / step at {first} turn(s), reuse on: **{fmt(ratio)}x** wall, "
        f"**{fmt(cpu_ratio)}x** CPU (goal <= 1.3x: {'met' if ratio <= 1.3 else 'not met'} on wall time); "
        f"per generated token **{fmt(token_ratio)}x** (the two probes' median turns differ in length).", "",
        "## Batched stepping (reuse on)", "",
        md_table(["episodes", "steps/s batched", "steps/s one by one", "speedup", "tokens/s batched"], batch_rows),
        "", "![latency](latency.png)",
    ])
    bench.finish(results, markdown, title="World-model step latency")
    print(md_table(headers, rows))
    print(f"ratio step@{last} / step@{first} with reuse: {ratio:.2f}x wall, {cpu_ratio:.2f}x CPU, "
          f"{token_ratio:.2f}x per generated token")
    print(md_table(["episodes", "steps/s batched", "steps/s one by one", "speedup", "tokens/s batched"], batch_rows))
    print(f"results: {bench.path}")
    return results


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m wmgym.benchmarks.latency", description=__doc__.split("\n\n")[0])
    d = LatencyConfig()
    p.add_argument("--env", default=d.env, help="real env id (its twin WM-<env> is played)")
    p.add_argument("--model", default=None, help="world model dir (default: trained default, else tiny)")
    p.add_argument("--probes", default=",".join(map(str, d.probes)), help="turns of history to report")
    p.add_argument("--episodes", type=int, default=d.episodes)
    p.add_argument("--window", type=int, default=d.window, help="steps per probe")
    p.add_argument("--max-new-tokens", type=int, default=d.max_new_tokens)
    p.add_argument("--batch-sizes", default=",".join(map(str, d.batch_sizes)))
    p.add_argument("--batch-steps", type=int, default=d.batch_steps)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--no-compare", action="store_true", help="skip the reuse-off timing")
    p.add_argument("--tiny-hidden", type=int, default=d.tiny_hidden, help="hidden size of the from-scratch model")
    p.add_argument("--tiny-layers", type=int, default=d.tiny_layers, help="layers of the from-scratch model")
    p.add_argument("--out", default=None, help="results folder (default results/latency/<timestamp>)")
    p.add_argument("--run-name", default=None)
    args = p.parse_args(argv)
    cfg = LatencyConfig(env=args.env, model=args.model, probes=tuple(int(x) for x in args.probes.split(",")),
                        episodes=args.episodes, window=args.window, max_new_tokens=args.max_new_tokens,
                        batch_sizes=tuple(int(x) for x in args.batch_sizes.split(",")), batch_steps=args.batch_steps,
                        seed=args.seed, compare=not args.no_compare, tiny_hidden=args.tiny_hidden,
                        tiny_layers=args.tiny_layers)
    run(cfg, out=args.out, run_name=args.run_name, argv=argv if argv is None else ["wmgym", "bench", "latency", *argv])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
