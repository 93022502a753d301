"""ALFWorld-v0: reset time and steps/s per room type, and the expert's success per task type.

``python -m wmgym.benchmarks.engines.alfworld [--games-per-type 50] [--steps 200] [--workers 1]``
(or ``wmgym bench engine --env ALFWorld-v0 [ARGS]``)

1. Speed, on the first generated game of a kitchen, a bedroom and a bathroom:
   the first reset of the game in a fresh env (load; translation from the disk
   cache), a reset with the translation caches cold (what plain ``PddlEnv``
   pays on every reset), repeated resets, and steps/s of random admissible
   commands and of the expert. The same game is also timed on the unpatched
   engine stack (``PddlEnv`` + ``AlfredDemangler`` + ``AlfredInfos``) as a
   baseline.
2. Expert success: ALFWorld's handcoded expert (policy ``expert``) on
   ``--games-per-type`` games of each of the six task types of ``--split``,
   under the registered 50-step limit.

Envs are built through the registered id; seeds are fixed. Results go to
``results/alfworld/<timestamp>/`` (``result.json`` + ``report.md``) or ``--out``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from typing import Any

import gymnasium as gym
import numpy as np

ROOMS = ("Kitchen", "Bedroom", "Bathroom")
ENV_ID = "ALFWorld-v0"


def find_room_games(split: str, rooms: tuple[str, ...] = ROOMS, limit: int = 200) -> dict[str, int]:
    """The first slot of ``split`` whose floor plan is of each room type (generating slots in order)."""
    from wmgym.envs.alfworld import generator
    from wmgym.envs.alfworld.scenes import room_of

    found: dict[str, int] = {}
    for index in range(limit):
        meta = json.loads((generator.ensure_game(split, index).parent / "wmgym.json").read_text())
        found.setdefault(room_of(meta["floor_plan"]), index)
        if all(r in found for r in rooms):
            break
    return {r: found[r] for r in rooms if r in found}


def _random_steps(env: gym.Env, info: dict, steps: int, rng: np.random.Generator, game: int, split: str) -> float:
    start = time.perf_counter()
    for _ in range(steps):
        commands = info["admissible_commands"]
        _, _, terminated, truncated, info = env.step(commands[int(rng.integers(len(commands)))])
        if terminated or truncated:
            _, info = env.reset(options={"game": game, "split": split})
    return steps / (time.perf_counter() - start)


def _expert_episode(env: gym.Env, game: int, split: str, seed: int) -> tuple[bool, int, float]:
    _, info = env.reset(seed=seed, options={"game": game, "split": split})
    steps, start, done = 0, time.perf_counter(), False
    while not done:
        action = env.unwrapped.expert_action() or "look"
        _, _, terminated, truncated, info = env.step(action)
        steps, done = steps + 1, terminated or truncated
    return bool(info["won"]), steps, time.perf_counter() - start


def measure_room(split: str, game: int, steps: int, seed: int, baseline_steps: int) -> dict[str, Any]:
    """Reset times and steps/s of one game through the registered env (and the unpatched stack)."""
    from wmgym.envs.alfworld import engine as E

    E._classes()  # import textworld before timing: the first reset of a process pays 1.5 s for it
    env = gym.make(ENV_ID)
    start = time.perf_counter()
    _, info = env.reset(seed=seed, options={"game": game, "split": split})
    first = time.perf_counter() - start
    path = info["gamefile"]
    repeats = []
    for _ in range(5):
        start = time.perf_counter()
        env.reset(options={"game": game, "split": split})
        repeats.append(time.perf_counter() - start)
    # Cold: forget the translation (memory and disk), as plain PddlEnv does on every reset.
    data = json.loads(open(path).read())
    E.translate.cache_clear()
    E.translation_cache_path(data["pddl_domain"], data["pddl_problem"]).unlink(missing_ok=True)
    start = time.perf_counter()
    env.reset(options={"game": game, "split": split})
    cold = time.perf_counter() - start
    _, info = env.reset(options={"game": game, "split": split})
    rng = np.random.default_rng(seed)
    random_sps = _random_steps(env, info, steps, rng, game, split)
    won, expert_steps, expert_s = _expert_episode(env, game, split, seed)
    _, info = env.reset(options={"game": game, "split": split})  # the agent starts at no receptacle
    n_receptacles = sum(c.startswith("go to ") for c in info["admissible_commands"])
    env.close()
    return {"game": game, "game_id": f"{split}/{game:05d}", "task": info["task"],
            "receptacles": n_receptacles, "reset_first_s": first, "reset_repeat_s": statistics.median(repeats),
            "reset_cold_s": cold,
            "random_steps_per_s": random_sps, "expert_won": won, "expert_steps": expert_steps,
            "expert_steps_per_s": expert_steps / expert_s,
            "baseline": measure_baseline(path, baseline_steps, seed)}


def measure_baseline(path: str, steps: int, seed: int) -> dict[str, float]:
    """The unpatched stack: ``PddlEnv`` translating on every reset, grammar parsed on every derivation."""
    import textworld
    from alfworld.agents.environment.alfred_tw_env import AlfredDemangler, AlfredInfos
    from textworld.envs.pddl.pddl import PddlEnv

    from wmgym.envs.alfworld.engine import translator_argv

    with translator_argv():  # the unpatched translator would leave sys.argv clobbered
        env = AlfredInfos(AlfredDemangler(PddlEnv(textworld.EnvInfos(admissible_commands=True, won=True)),
                                          shuffle=False))
        start = time.perf_counter()
        env.load(path)
        load_s = time.perf_counter() - start
        start = time.perf_counter()
        state = env.reset()
        reset_s = time.perf_counter() - start
        rng = np.random.default_rng(seed)
        start = time.perf_counter()
        for _ in range(steps):
            commands = state["admissible_commands"]
            state, _, done = env.step(commands[int(rng.integers(len(commands)))])
        sps = steps / (time.perf_counter() - start)
    env.close()
    return {"load_s": load_s, "reset_s": reset_s, "random_steps_per_s": sps}


def measure_expert(split: str, per_type: int, seed: int, workers: int) -> dict[str, Any]:
    """Expert success and steps on ``per_type`` games of each task type."""
    from wmgym.envs.alfworld import TASK_TYPES
    from wmgym.envs.alfworld.generator import game_dir

    indices = [t + len(TASK_TYPES) * k for k in range(per_type) for t in range(len(TASK_TYPES))]
    missing = [i for i in indices if not (game_dir(split, i) / "game.tw-pddl").exists()]
    env = gym.make(ENV_ID)
    start = time.perf_counter()
    env.unwrapped.prepare_games(split, indices, workers=workers, progress=True)
    gen_s = time.perf_counter() - start
    by_type: dict[str, list[tuple[bool, int]]] = {t: [] for t in TASK_TYPES}
    play_s = 0.0
    for i in indices:
        won, steps, elapsed = _expert_episode(env, i, split, seed + i)
        play_s += elapsed
        by_type[TASK_TYPES[i % len(TASK_TYPES)]].append((won, steps))
    env.close()
    table = {t: {"games": len(r), "success": sum(w for w, _ in r) / len(r),
                 "mean_steps": statistics.mean(s for _, s in r), "max_steps": max(s for _, s in r)}
             for t, r in by_type.items()}
    all_runs = [x for r in by_type.values() for x in r]
    return {"split": split, "per_task_type": table, "games": len(all_runs),
            "success": sum(w for w, _ in all_runs) / len(all_runs),
            "generated": len(missing), "generation_s": gen_s,
            "generation_s_per_game": gen_s / len(missing) if missing else None,
            "expert_steps_per_s": sum(s for _, s in all_runs) / play_s}


def markdown(speed: dict[str, Any], expert: dict[str, Any]) -> str:
    lines = ["## Speed per room type (one game each)", "",
             "| room | game | receptacles | first reset s | repeat reset s | cold reset s | random steps/s | "
             "expert steps/s | unpatched reset s | unpatched steps/s |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for room, r in speed.items():
        b = r["baseline"]
        lines.append(f"| {room} | {r['game_id']} | {r['receptacles']} | {r['reset_first_s']:.3f} | "
                     f"{r['reset_repeat_s']:.3f} | {r['reset_cold_s']:.3f} | {r['random_steps_per_s']:.1f} | "
                     f"{r['expert_steps_per_s']:.1f} | {b['reset_s']:.3f} | {b['random_steps_per_s']:.1f} |")
    lines += ["", "First reset: a fresh env loading the game (translation from the disk cache). Cold reset: "
              "translation caches emptied first (what unpatched `PddlEnv` pays on every reset).",
              "", f"## Expert success ({expert['split']}, {expert['games']} games)", "",
              "| task type | games | success | mean steps | max steps |", "|---|---|---|---|---|"]
    for t, r in expert["per_task_type"].items():
        lines.append(f"| {t} | {r['games']} | {r['success']:.0%} | {r['mean_steps']:.1f} | {r['max_steps']} |")
    lines.append(f"| **all** | {expert['games']} | {expert['success']:.0%} | | |")
    if expert["generation_s_per_game"] is not None:
        lines += ["", f"Generated {expert['generated']} games at {expert['generation_s_per_game']:.2f} s/game."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m wmgym.benchmarks.engines.alfworld",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--split", default="train", help="split whose games are played")
    parser.add_argument("--games-per-type", type=int, default=50, help="games per task type for expert success")
    parser.add_argument("--steps", type=int, default=200, help="random steps timed per room")
    parser.add_argument("--baseline-steps", type=int, default=20, help="random steps timed on the unpatched stack")
    parser.add_argument("--workers", type=int, default=1, help="processes generating games")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="results folder (default results/alfworld/<timestamp>)")
    args = parser.parse_args(argv)
    if args.games_per_type < 1 or args.steps < 1:
        parser.error("--games-per-type and --steps must be >= 1")

    import wmgym  # noqa: F401
    from wmgym.benchmarks.common import BenchmarkRun

    run = BenchmarkRun("alfworld", config=vars(args), seeds=[args.seed], out=args.out, argv=argv,
                       envs=["ALFWorld-v0"])
    rooms = find_room_games(args.split)
    speed = {room: measure_room(args.split, game, args.steps, args.seed, args.baseline_steps)
             for room, game in rooms.items()}
    expert = measure_expert(args.split, args.games_per_type, args.seed, args.workers)
    text = markdown(speed, expert)
    run.finish({"speed": speed, "expert": expert}, text)
    print(text)
    print(f"\nwritten to {run.path}")
    return 0 if expert["success"] == 1.0 else 1


if __name__ == "__main__":
    sys.exit(main())
