"""What the model benchmarks share: world-model arguments and gold trajectories.

- :func:`add_model_args` / :func:`load_models`: ``--model`` (a directory, a hub
  id, or ``ENV=DIR`` per env; default: each env's embedded model under
  ``WMGYM_HOME/models/<env>``), ``--backend`` (hf | openai | vllm) and
  ``--wm-arg KEY=VALUE`` for backend and generation settings.
- :func:`gold_episodes`: held-out episodes of scripted policies in the real
  env, spread over the split's games, played with
  :func:`wmgym.training.collect.run_episode` and cached under
  ``WMGYM_HOME/benchmarks/gold`` (or read from ``--trajectories`` files).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from wmgym.paths import wmgym_home


def add_model_args(parser: argparse.ArgumentParser) -> None:
    """The world-model flags every model benchmark takes."""
    parser.add_argument("--model", action="append", default=None, metavar="DIR|HUB_ID|ENV=DIR",
                        help="world model: one for every env, or ENV=DIR per env (repeatable); "
                             "default: each env's embedded model (wmgym train default --env ID)")
    parser.add_argument("--backend", default="hf", help="world-model backend: hf | openai | vllm")
    parser.add_argument("--wm-arg", action="append", default=[], metavar="KEY=VALUE",
                        help="backend/generation setting, e.g. max_new_tokens=128 or base_url=http://... "
                             "(repeatable; values are read as JSON when they parse)")


def parse_kv(items: list[str]) -> dict[str, Any]:
    """``["a=1", "b=x"]`` → ``{"a": 1, "b": "x"}`` (values parsed as JSON when they parse)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"expected KEY=VALUE, got {item!r}")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def model_names(models: list[str] | None, envs: list[str]) -> dict[str, str | None]:
    """Which model each env uses: ``None`` means the env's embedded default."""
    out: dict[str, str | None] = dict.fromkeys(envs)
    for spec in models or []:
        env, sep, path = spec.partition("=")
        if sep and env in out:
            out[env] = path
        elif sep and not os.path.exists(spec):
            raise ValueError(f"--model {spec!r} names env {env!r}, which is not benchmarked; envs: {envs}")
        else:
            for e in envs:
                out[e] = spec
    return out


def load_models(names: dict[str, str | None], backend: str = "hf", **kwargs: Any) -> dict[str, Any]:
    """Load each env's world model once (envs naming the same model share it)."""
    from wmgym.worldmodels import load_world_model
    from wmgym.worldmodels.loading import default_model_dir, train_default_command

    loaded: dict[str, Any] = {}
    out: dict[str, Any] = {}
    for env, name in names.items():
        if name is None and backend != "openai":
            path = default_model_dir(env)
            if not (path / "config.json").is_file():
                raise FileNotFoundError(f"no world model for {env} at {path}; train it with "
                                        f"`{train_default_command(env)}` or pass --model DIR")
            name = str(path)
        if name is None:
            raise ValueError("--backend openai needs --model NAME (the served model) and --wm-arg base_url=URL")
        if name not in loaded:
            loaded[name] = load_world_model(name, backend=backend, **kwargs)
        out[env] = loaded[name]
    return out


def describe_models(names: dict[str, str | None], backend: str) -> dict[str, str]:
    """Model names for the results (the embedded default spelled out)."""
    from wmgym.worldmodels.loading import default_model_dir

    return {env: f"{name or default_model_dir(env)} ({backend})" for env, name in names.items()}


def heldout_split(env_id: str, split: str | None = None) -> str:
    """The held-out split benchmarks use: ``split`` if given, else ``test``, else ``valid_unseen``
    (ALFWorld's out-of-distribution split, its usual test set), else the env's last split."""
    if split is not None:
        return split
    from wmgym.envs import env_class

    splits = getattr(env_class(env_id), "splits", ("test",))
    for candidate in ("test", "valid_unseen"):
        if candidate in splits:
            return candidate
    return splits[-1]


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
    from wmgym.training.policies import make_policy
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
            prepare = getattr(env.unwrapped, "prepare_games", None)
            if missing and prepare is not None:
                prepare(split, missing, workers=workers, progress=progress)
            with TrajectoryWriter(path) as writer:
                for g in missing:
                    ep = run_episode(env, make_policy(policy, seed=seed + g), seed=seed + g,
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
