"""SciWorld speed: steps/s of ``SciWorld-v0`` against the package's plain ``ScienceWorldEnv.step``, same actions.

``python -m wmgym.benchmarks.engines.sciworld``
``python -m wmgym.benchmarks.engines.sciworld --tasks all --steps 60``
(or ``wmgym bench engine --env SciWorld-v0 [ARGS]``)

For each game (by default the first test variation of ten tasks from all the
task families), the action sequence is the variation's gold path (its first
``--steps`` actions), played from the start three ways in one run, game after
game so that machine load hits all three alike:

- ``package``: ``scienceworld.ScienceWorldEnv`` (``load`` + ``reset``, then
  ``step``), which fetches look, inventory, task text and the full valid-action
  list from the JVM on every step;
- ``SciWorld-v0``: ``gym.make("SciWorld-v0")``, with its filtered admissible
  commands on every step (the default);
- ``SciWorld-v0 (no admissible)``: ``gym.make("SciWorld-v0",
  admissible_commands=False)``, one ``step`` and two score calls a step.

Each JVM first plays the first game once, untimed (JIT warm-up). Only the
``step`` calls are timed; resets are timed apart (ours from the context cache,
which is filled before timing; the first, gathering reset is reported too).
The observations of package and env are compared step by step (ScienceWorld
lists some objects in an arbitrary order, so a few may differ).
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import gymnasium as gym

from wmgym.benchmarks.common import BenchmarkRun, add_common_args, bar_plot, fmt, md_table

#: One task per family, short-to-medium gold paths (mendelian's take ~20 s each to generate).
DEFAULT_TASKS = ("boil", "use-thermometer", "power-component", "test-conductivity", "find-animal", "grow-plant",
                 "chemistry-mix", "lifespan-longest-lived", "identify-life-stages-1", "inclined-plane-determine-angle")
CONFIGS = ("package", "SciWorld-v0", "SciWorld-v0 (no admissible)")


def _time_steps(step, actions: list[str]) -> tuple[float, list[str]]:
    observations = []
    start = time.perf_counter()
    for action in actions:
        observations.append(step(action))
    return time.perf_counter() - start, observations


def _warm_up(task: str, split: str, steps: int, package, *envs) -> None:
    """Play the first game once, untimed, in every JVM (its JIT compiles the hot paths)."""
    variation = envs[0].unwrapped.variations(task, split)[0]
    envs[0].reset(seed=0, options={"game": f"{split}/{task}/{variation}"})
    actions = envs[0].unwrapped.gold_actions()[:steps]
    package.load(task, variation, "")
    package.reset()
    for action in actions:
        package.step(action)
    for env in envs:
        env.reset(seed=0, options={"game": f"{split}/{task}/{variation}"})
        for action in actions:
            env.step(action)


def run(tasks: list[str], steps: int, split: str) -> dict[str, Any]:
    """Play each game's gold prefix in the package and in both env configurations; return timings."""
    import wmgym  # noqa: F401
    from scienceworld import ScienceWorldEnv

    ours = gym.make("SciWorld-v0", split=split)
    lean = gym.make("SciWorld-v0", split=split, admissible_commands=False)
    package = ScienceWorldEnv("", envStepLimit=10**6)
    games, totals = [], {c: {"steps": 0, "step_s": 0.0, "reset_s": 0.0} for c in CONFIGS}
    try:
        _warm_up(tasks[0], split, steps, package, ours, lean)
        for task in tasks:
            variation = ours.unwrapped.variations(task, split)[0]
            game = f"{split}/{task}/{variation}"
            start = time.perf_counter()
            ours.reset(seed=0, options={"game": game})  # fills the context cache (timed apart)
            first_reset_s = time.perf_counter() - start
            actions = ours.unwrapped.gold_actions()[:steps]
            row = {"game": game, "steps": len(actions), "first_reset_s": first_reset_s}

            start = time.perf_counter()
            package.load(task, variation, "")
            package.reset()
            row["package_reset_s"] = time.perf_counter() - start
            row["package_s"], seen_pkg = _time_steps(lambda a: package.step(a)[0], actions)

            observed = {}
            for name, env in (("SciWorld-v0", ours), ("SciWorld-v0 (no admissible)", lean)):
                start = time.perf_counter()
                env.reset(seed=0, options={"game": game})
                row[f"{name}_reset_s"] = time.perf_counter() - start
                row[f"{name}_s"], observed[name] = _time_steps(lambda a, e=env: e.step(a)[0], actions)
            row["same_observations"] = sum(a == b for a, b in zip(seen_pkg, observed["SciWorld-v0"])) / len(actions)
            for name in CONFIGS:
                totals[name]["steps"] += len(actions)
                totals[name]["step_s"] += row[f"{name}_s"]
                totals[name]["reset_s"] += row[f"{name}_reset_s"]
            games.append(row)
            print(f"{game:<50} {len(actions):>3} steps  " + "  ".join(
                f"{name}: {len(actions) / row[f'{name}_s']:.1f}/s" for name in CONFIGS), flush=True)
    finally:
        package.close()
        ours.close()
        lean.close()
    for name, t in totals.items():
        t["steps_per_s"] = t["steps"] / t["step_s"]
        t["ms_per_step"] = 1000 * t["step_s"] / t["steps"]
        t["reset_s_mean"] = t["reset_s"] / len(games)
        t["speedup_vs_package"] = t["steps_per_s"] / (totals["package"]["steps"] / totals["package"]["step_s"])
    agreement = sum(g["same_observations"] * g["steps"] for g in games) / sum(g["steps"] for g in games)
    return {"totals": totals, "games": games, "observation_agreement": agreement}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m wmgym.benchmarks.engines.sciworld",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", default=",".join(DEFAULT_TASKS), help="comma-separated tasks, or 'all'")
    parser.add_argument("--steps", type=int, default=40, help="gold actions played per game (its first N)")
    parser.add_argument("--split", default="test", choices=["train", "dev", "test"], help="split of the games")
    add_common_args(parser)
    args = parser.parse_args(argv)
    if args.steps < 1:
        raise ValueError(f"--steps must be >= 1, got {args.steps}")
    from wmgym.envs.sciworld.engine import resolve_task, task_names

    tasks = task_names() if args.tasks == "all" else [resolve_task(t) for t in args.tasks.split(",") if t.strip()]
    bench = BenchmarkRun("sciworld", config=vars(args), seeds={"reset": 0}, out=args.out, run_name=args.run_name,
                         envs=["SciWorld-v0"],
                         argv=None if argv is None else ["python", "-m", "wmgym.benchmarks.engines.sciworld", *argv])
    results = run(tasks, args.steps, args.split)
    totals = results["totals"]
    rows = [[name, t["steps"], f"{t['steps_per_s']:.1f}", f"{t['ms_per_step']:.1f}",
             f"{t['speedup_vs_package']:.2f}x", f"{t['reset_s_mean']:.2f}"] for name, t in totals.items()]
    per_game = [[g["game"], g["steps"], *(f"{g['steps'] / g[f'{n}_s']:.1f}" for n in CONFIGS),
                 fmt(g["same_observations"], 0, percent=True) + "%", f"{g['first_reset_s']:.1f}"]
                for g in results["games"]]
    plot = bar_plot(bench.add_figure("steps_per_s.png"), [g["game"].split("/", 1)[1] for g in results["games"]],
                    {n: [g["steps"] / g[f"{n}_s"] for g in results["games"]] for n in CONFIGS},
                    title="SciWorld: steps/s on the same gold actions", ylabel="steps/s")
    markdown = "\n\n".join([
        "Same actions (each game's gold prefix) in the package's `ScienceWorldEnv.step` and in `SciWorld-v0`; "
        "only `step` calls are timed.",
        md_table(["config", "steps", "steps/s", "ms/step", "vs package", "reset s (mean)"], rows),
        f"Observations identical to the package's on {100 * results['observation_agreement']:.1f}% of steps "
        "(ScienceWorld orders some object lists arbitrarily).",
        md_table(["game", "steps", *[f"{n} steps/s" for n in CONFIGS], "same obs", "first reset s (gathering)"],
                 per_game),
        f"![steps/s]({plot.rsplit('/', 1)[-1]})",
    ])
    path = bench.finish(results, markdown, title="SciWorld-v0 against the scienceworld package")
    for name, t in totals.items():
        print(f"{name:<30} {t['steps_per_s']:7.1f} steps/s  {t['speedup_vs_package']:.2f}x the package")
    print(f"results in {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
