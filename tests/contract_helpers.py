"""Registered ids as pytest parameters, and the short play both env contracts compare (unique module name:
``tests/`` is on the path of every test)."""

from __future__ import annotations

import importlib.util

import gymnasium as gym
import pytest

import wmgym

#: Real ids whose engine runs on the JVM: their tests (and their twins') carry the ``java`` mark.
JAVA_REAL_IDS = {"SciWorld-v0"}


#: Real-id prefixes of the tool envs and the package each needs (installed --no-deps: docs/tool-envs.md).
TOOL_PACKAGES = {"Tau2-": ("tau2",), "StableToolBench-": ("tau2", "bfcl_eval")}


def _param(env_id: str, real_id: str):
    for prefix, packages in TOOL_PACKAGES.items():
        missing = [p for p in packages if real_id.startswith(prefix) and importlib.util.find_spec(p) is None]
        if missing:
            return pytest.param(env_id, marks=pytest.mark.skip(reason=f"{missing} not installed"))
    return pytest.param(env_id, marks=pytest.mark.java) if real_id in JAVA_REAL_IDS else env_id


def real_id_params() -> list:
    """Every registered real id, marked where it needs Java."""
    return [_param(i, i) for i in wmgym.registered_ids() if not i.startswith("WM-")]


def twin_id_params() -> list:
    """Every registered ``WM-*`` id, marked where its real env needs Java."""
    return [_param(i, gym.spec(i).kwargs["real_id"]) for i in wmgym.registered_ids() if i.startswith("WM-")]


def play(env: gym.Env, seed: int, n: int) -> list[str]:
    """Reset with ``seed`` and take ``n`` steps picked from the admissible commands: the observations seen."""
    obs, info = env.reset(seed=seed)
    seen = [obs, info["init_context"]]
    for _ in range(n):
        commands = info["admissible_commands"] or ["look"]
        obs, _, terminated, truncated, info = env.step(commands[len(seen) % len(commands)])
        seen.append(obs)
        if terminated or truncated:
            break
    return seen
