"""``wmgym quickstart``: the whole loop on this CPU.

1. Collects TextWorld and ALFWorld trajectories (expert, noisy expert and
   random play; cached and resumable under ``WMGYM_HOME/data``).
2. Trains the embedded default twins with the tiny preset, both at once (one
   process and one torch thread per env, so the two cores are both busy).
3. Reports teacher-forced single-step exact match on the held-out test games.
4. Plays one twin episode beside the real one, action by action.

A second run reuses the collected data and the trained twins.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

DEFAULT_ENVS = ("TextWorld-v0", "ALFWorld-v0")


def _train_in_parallel(envs: list[str], force: bool, workers: int) -> dict[str, int]:
    """Run ``wmgym train default`` for each env in its own process; show one progress bar per env."""
    from tqdm import tqdm

    from wmgym.training.default import run_dir

    procs, bars, logs, started = {}, {}, {}, {}
    pending = list(envs)
    position = 0
    codes: dict[str, int] = {}
    env_vars = {**os.environ, "PYTHONUNBUFFERED": "1", "TOKENIZERS_PARALLELISM": "false"}
    while pending or procs:
        while pending and len(procs) < workers:
            env = pending.pop(0)
            log = run_dir(env).with_suffix(".log")
            log.parent.mkdir(parents=True, exist_ok=True)
            logs[env] = log
            cmd = [sys.executable, "-m", "wmgym.cli", "train", "default", "--env", env, "--workers", "1",
                   "--quiet", *(["--force"] if force else [])]
            started[env] = time.time()
            procs[env] = subprocess.Popen(cmd, stdout=open(log, "w"), stderr=subprocess.STDOUT, env=env_vars)
            bars[env] = tqdm(total=1, desc=f"training {env}", position=position, unit="step", leave=True)
            position += 1
        for env, proc in list(procs.items()):
            progress = run_dir(env) / "progress.json"
            # A progress file from before this launch is an earlier run's (e.g. of a replaced recipe), not this one's.
            if progress.exists() and progress.stat().st_mtime >= started[env] - 1:
                try:
                    p = json.loads(progress.read_text())
                except (OSError, ValueError):
                    p = None
                if p:
                    bars[env].set_description(f"training {env}" + (f" ({p['phase']})" if p.get("phase") else ""),
                                              refresh=False)
                    bars[env].total = p["max_steps"]
                    bars[env].n = p["step"]
                    post = {"loss": f"{p['loss']:.3f}"} if p.get("loss") is not None else {}
                    if p.get("eval_em") is not None:
                        post["held-out EM"] = f"{p['eval_em']:.3f}"
                    bars[env].set_postfix(post, refresh=False)
                    bars[env].refresh()
            if proc.poll() is not None:
                codes[env] = proc.returncode
                bars[env].close()
                del procs[env]
                if proc.returncode != 0:
                    print(f"training {env} failed (exit {proc.returncode}); log: {logs[env]}\n"
                          + "".join(Path(logs[env]).read_text().splitlines(keepends=True)[-15:]), file=sys.stderr)
        time.sleep(1.0)
    return codes


def play_side_by_side(env_id: str, game: int = 0, max_steps: int = 12, seed: int = 0) -> dict[str, Any]:
    """One expert episode on a held-out game in the real env, the same actions in its twin; prints both."""
    import gymnasium as gym

    from wmgym.envs import heldout_split
    from wmgym.agents import make_agent

    real = gym.make(env_id)
    twin = gym.make(f"WM-{env_id}")
    split = heldout_split(env_id)
    options = {"game": game, "split": split}
    obs_r, info_r = real.reset(seed=seed, options=options)
    twin.reset(seed=seed, options=options)
    expert = make_agent("expert", env_id, privileged=True)
    expert.reset(obs_r, info_r, seed, env=real)
    same = steps = 0
    ends: dict[str, tuple[int, bool, bool]] = {}  # "real"/"twin" -> (step, won, truncated) where that episode ended
    print(f"\n=== {env_id}, {split} game {game}: real env (R) vs twin (T), expert actions ===")
    print(obs_r.strip()[:600])
    for steps in range(1, max_steps + 1):
        action = expert.act(obs_r, info_r)
        obs_r, _, term_r, trunc_r, info_r = real.step(action)
        if term_r or trunc_r:
            ends["real"] = (steps, bool(info_r.get("won")), not term_r)
        if "twin" in ends:  # an ended episode takes no more steps; the real one plays on to its own end
            obs_t, match = "(the twin's episode has ended)", False
        else:
            obs_t, _, term_t, trunc_t, info_t = twin.step(action)
            if term_t or trunc_t:
                ends["twin"] = (steps, bool(info_t.get("won")), not term_t)
            match = obs_r.strip() == obs_t.strip()
        same += match
        print(f"\n[{steps}] > {action}   {'(same)' if match else '(DIFFERENT)'}")
        print("R: " + obs_r.strip().replace("\n", "\n   "))
        if not match:
            print("T: " + obs_t.strip().replace("\n", "\n   "))
        if "real" in ends:
            break
    real.close()
    twin.close()
    print(f"\nresult: real env {_ending(ends.get('real'), steps)}; twin {_ending(ends.get('twin'), steps)} "
          f"({same} of {steps} observations the same)")
    return {"env": env_id, "steps": steps, "same": same, "real_won": ends.get("real", (0, False))[1],
            "twin_won": ends.get("twin", (0, False))[1]}


def _ending(end: tuple[int, bool, bool] | None, steps: int) -> str:
    """How an episode of the side-by-side play ended: won, or why not."""
    if end is None:
        return f"did not win (still going after {steps} steps)"
    step, won, truncated = end
    if won:
        return f"won in {step} steps"
    return f"did not win ({'stopped by the step limit' if truncated else 'lost'} at step {step})"


def quickstart(envs: list[str] | None = None, workers: int = 2, force: bool = False) -> int:
    """Run the quickstart (see module docstring); returns a process exit code."""
    import gymnasium as gym

    import wmgym  # noqa: F401
    from wmgym.training.default import collect_data, em_curve, recipe_for, trained_default

    t0 = time.time()
    wanted = list(envs or DEFAULT_ENVS)
    missing = [e for e in wanted if e not in gym.registry]
    if missing and envs:
        raise ValueError(f"unknown env id(s) {missing}; registered: {sorted(k for k in gym.registry)}")
    envs = [e for e in wanted if e not in missing]
    for e in missing:
        print(f"{e} is not built in this wmgym yet; skipping it")
    print(f"wmgym quickstart: {', '.join(envs)} (cache: {os.environ.get('WMGYM_HOME', '~/.cache/wmgym')})")

    print("\n[1/4] collecting trajectories (expert, noisy expert, random; cached)")
    for env in envs:
        collect_data(recipe_for(env), workers=workers)
    t_collect = time.time() - t0

    print("\n[2/4] training the default twins (tiny preset, one CPU core each)")
    todo = [e for e in envs if force or trained_default(e) is None]
    for e in envs:
        if e not in todo:
            print(f"{e}: already trained (use --force to retrain)")
    if todo:
        codes = _train_in_parallel(todo, force, max(1, workers))
        if any(codes.values()):
            return 1
    t_train = time.time() - t0 - t_collect

    print("\n[3/4] teacher-forced single-step exact match on held-out test games")
    rows = []
    for env in envs:
        meta = trained_default(env)
        test = meta["test"]
        per_policy = ", ".join(f"{p}: {v:.1%}" for p, v in test["em_per_policy"].items())
        rows.append(f"  {env:14s} EM {test['em']:.1%} over {test['steps']} steps of {test['episodes']} episodes "
                    f"({per_policy}); model {meta['sft']['parameters'] / 1e6:.1f}M params")
        curve = em_curve(meta)
        if curve:
            n = meta["sft"].get("eval_em_episodes")
            scored = f"first {n} held-out episodes" if n else "held-out episodes"
            rows.append(f"  {'':14s} EM against SFT tokens ({scored}; warm-ups not counted): "
                        + ", ".join(f"{tokens / 1e6:.1f}M {em:.1%}" for _, tokens, em in curve))
    print("\n".join(rows))

    print("\n[4/4] one twin episode beside the real one")
    for env in envs:
        play_side_by_side(env)
    print(f"\ndone in {(time.time() - t0) / 60:.1f} min (collection {t_collect / 60:.1f}, training "
          f"{t_train / 60:.1f}). Use a twin: gym.make('WM-{envs[0]}')")
    return 0
