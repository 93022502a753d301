"""Real text environments, the shared base, the twin env, and registration.

``import wmgym`` runs :func:`register_envs`, a flat list of
``gymnasium.register`` calls with string entry points (imported lazily, so a
heavy engine loads only when its env is made).

Also the one home of the twin-id helpers (:func:`twin_id`, :func:`real_id`)
and of the readers of what an env declares on its class (:func:`env_class`,
:func:`heldout_split`, :func:`load_entry_point`), so training and benchmarks
ask the env instead of branching on its name.
"""

from __future__ import annotations

import importlib
from typing import Any

import gymnasium as gym

from wmgym.envs.base import EngineReset, EngineStep, TextEnv

#: What a twin id puts before its real env's id (``WM-TextWorld-v0``).
TWIN_PREFIX = "WM-"

#: Every id wmgym registers, with a one-line description (``wmgym envs`` prints these).
ENV_DESCRIPTIONS: dict[str, str] = {}


def _register(env_id: str, entry_point: str, max_episode_steps: int, description: str,
              vector_entry_point: str | None = None, **kwargs) -> None:
    ENV_DESCRIPTIONS[env_id] = description
    if env_id in gym.registry:
        return
    gym.register(id=env_id, entry_point=entry_point, max_episode_steps=max_episode_steps,
                 disable_env_checker=True, vector_entry_point=vector_entry_point, kwargs=kwargs)


def register_envs() -> None:
    """Register every wmgym id with Gymnasium (idempotent)."""
    _register("TextWorld-v0", "wmgym.envs.textworld.env:TextWorldEnv", 50,
              "TextWorld games (custom quests + cooking) compiled locally; 2,500 train / 200 test")
    _register("ALFWorld-v0", "wmgym.envs.alfworld.env:ALFWorldEnv", 50,
              "ALFWorld's PDDL text engine, 6 household task types; 2,420 train / 200 valid_seen / 200 valid_unseen")
    _register("SciWorld-v0", "wmgym.envs.sciworld.env:SciWorldEnv", 100,
              "ScienceWorld's 30 science tasks in its Java simulator; its variation splits 3,592 train / 1,796 dev / "
              "1,819 test")
    _register("WebShop-v0", "wmgym.envs.webshop.env:WebShopEnv", 15,
              "WebShop's text shopping site (BM25 search, purchase reward) over a generated 1,200-product catalog "
              "or the official files; ~3,500 train / 200 test goals")
    for domain, about in (("retail", "orders, exchanges, returns; 74 train / 40 test tasks"),
                          ("airline", "bookings, changes, cancellations; 30 train / 20 test tasks"),
                          ("telecom", "phone troubleshooting from a ticket, solo mode; 74 train / 40 test tasks")):
        _register(f"Tau2-{domain.capitalize()}-v0", "wmgym.envs.tau2.env:Tau2Env", 30,
                  f"tau2-bench's {domain} domain (its tools, database and evaluator; one JSON tool call a step): "
                  f"{about}; needs the tools install (docs/tool-envs.md)", domain=domain)
    _register("StableToolBench-v0", "wmgym.envs.stabletoolbench.env:StableToolBenchEnv", 3,
              "StableToolBench's API-server task: an API's doc and one request, answer {error, response}; real "
              "answers from tau2's tools and bfcl-eval's APIs (gold and noisy calls) or the official cache "
              "(data_dir=); needs the tools install (docs/tool-envs.md)")

    # Twins: WM-<id> beside every real id registered above. Keep this loop LAST in this function.
    for real in [i for i in ENV_DESCRIPTIONS if not i.startswith(TWIN_PREFIX)]:
        _register(twin_id(real), "wmgym.envs.twin:TwinEnv", gym.spec(real).max_episode_steps,
                  f"world-model twin of {real} (model= dir/hub id; default WMGYM_HOME/models/{real})",
                  vector_entry_point="wmgym.envs.twin_vector:TwinVectorEnv", real_id=real)


def twin_id(env_id: str) -> str:
    """The twin id of a real id (``TextWorld-v0`` -> ``WM-TextWorld-v0``); twin ids pass unchanged."""
    return env_id if env_id.startswith(TWIN_PREFIX) else TWIN_PREFIX + env_id


def real_id(env_id: str) -> str:
    """The real id behind a twin id (``WM-TextWorld-v0`` -> ``TextWorld-v0``); real ids pass unchanged."""
    return env_id[len(TWIN_PREFIX):] if env_id.startswith(TWIN_PREFIX) else env_id


def load_entry_point(entry_point: str) -> Any:
    """The object a ``"package.module:attribute"`` string names, imported now (Gymnasium's spelling)."""
    module, sep, name = entry_point.partition(":")
    if not sep or not module or not name:
        raise ValueError(f"entry point {entry_point!r} is not of the form 'package.module:attribute'")
    try:
        return getattr(importlib.import_module(module), name)
    except AttributeError:
        raise ImportError(f"entry point {entry_point!r}: module {module!r} has no attribute {name!r}") from None


def env_class(env_id: str) -> type:
    """The class of the real env behind ``env_id`` (a twin id gives its real env's class), imported
    without making an env, for what the env declares on its class."""
    return load_entry_point(str(gym.spec(real_id(env_id)).entry_point))


def heldout_split(env_id: str, split: str | None = None) -> str:
    """The split benchmarks score on and default twins are evaluated on: ``split`` if given, else the one
    the env declares (``TextEnv.heldout_split``; a twin id gives its real env's)."""
    return split if split is not None else env_class(env_id).heldout_split


def registered_ids() -> list[str]:
    """All ids wmgym registers, sorted."""
    return sorted(ENV_DESCRIPTIONS)


__all__ = ["ENV_DESCRIPTIONS", "EngineReset", "EngineStep", "TWIN_PREFIX", "TextEnv", "env_class", "heldout_split",
           "load_entry_point", "real_id", "register_envs", "registered_ids", "twin_id"]
