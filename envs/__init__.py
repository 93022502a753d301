"""Real text environments, the shared base, the twin env, and registration.

``import wmgym`` runs :func:`register_envs`, a flat list of
``gymnasium.register`` calls with string entry points (imported lazily, so a
heavy engine loads only when its env is made).
"""

from __future__ import annotations

import gymnasium as gym

from wmgym.envs.base import EngineReset, EngineStep, TextEnv

#: Every id wmgym registers, with a one-line description (``wmgym envs`` prints these).
ENV_DESCRIPTIONS: dict[str, str] = {}


def _register(env_id: str, entry_point: str, max_episode_steps: int, description: str, **kwargs) -> None:
    ENV_DESCRIPTIONS[env_id] = description
    if env_id in gym.registry:
        return
    gym.register(id=env_id, entry_point=entry_point, max_episode_steps=max_episode_steps,
                 disable_env_checker=True, kwargs=kwargs)


def register_envs() -> None:
    """Register every wmgym id with Gymnasium (idempotent)."""
    _register("TextWorld-v0", "wmgym.envs.textworld.env:TextWorldEnv", 50,
              "TextWorld games (custom quests + cooking) compiled locally; 2,500 train / 200 test")
    _register("ALFWorld-v0", "wmgym.envs.alfworld.env:ALFWorldEnv", 50,
              "ALFWorld's PDDL text engine, 6 household task types; 2,420 train / 200 valid_seen / 200 valid_unseen")
    _register("SciWorld-v0", "wmgym.envs.sciworld.env:SciWorldEnv", 100,
              "ScienceWorld's 30 science tasks in its Java simulator; its variation splits 3,592 train / 1,796 dev / "
              "1,819 test")

    # Twins: WM-<id> beside every real id registered above. Keep this loop LAST in this function.
    for real_id in [i for i in ENV_DESCRIPTIONS if not i.startswith("WM-")]:
        _register(f"WM-{real_id}", "wmgym.envs.twin:TwinEnv", gym.spec(real_id).max_episode_steps,
                  f"world-model twin of {real_id} (model= dir/hub id; default WMGYM_HOME/models/{real_id})",
                  real_id=real_id)


def env_class(env_id: str) -> type:
    """The class a registered id makes, imported without making an env (for its class attributes)."""
    import importlib

    module, _, name = str(gym.spec(env_id).entry_point).partition(":")
    return getattr(importlib.import_module(module), name)


def registered_ids() -> list[str]:
    """All ids wmgym registers, sorted."""
    return sorted(ENV_DESCRIPTIONS)


__all__ = ["EngineReset", "EngineStep", "TextEnv", "register_envs", "registered_ids", "env_class", "ENV_DESCRIPTIONS"]
