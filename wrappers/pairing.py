"""What the wrappers share: pairing a twin with its real env on the same game.

A twin (``WM-<RealId>``) knows its real id; the wrappers make the real env from
it unless one is passed, and reset both on the same game by pinning the real
episode's ``game_id`` and ``split`` in the reset options (a seed alone picks
the same game only while both envs draw from ``np_random`` identically).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import gymnasium as gym

from wmgym.worldmodels.base import WorldModel


def twin_core(twin: gym.Env) -> Any:
    """The unwrapped twin env, checked for the attributes the wrappers use."""
    core = twin.unwrapped
    missing = [a for a in ("world_model", "anchor", "real_id") if not hasattr(core, a)]
    if missing:
        name = twin.spec.id if twin.spec is not None else type(core).__name__
        raise TypeError(f"{name} is not a twin env (it lacks {missing}); make one with gym.make('WM-<RealId>')")
    return core


def world_model_of(twin: gym.Env | WorldModel) -> WorldModel:
    """The world model behind ``twin``: a twin env's model, or ``twin`` itself if it is one."""
    if isinstance(twin, gym.Env):
        return twin_core(twin).world_model
    if isinstance(twin, WorldModel):
        return twin
    raise TypeError(f"expected a twin env or a WorldModel, got {type(twin).__name__}")


def make_real(twin: gym.Env, real: gym.Env | str | None = None, **make_kwargs: Any) -> gym.Env:
    """The real env that pairs with ``twin``: ``real`` itself, or made from an id / the twin's real id.

    A made env gets the twin's default split so both play the same game list.
    """
    if isinstance(real, gym.Env):
        return real
    env_id = real if real is not None else twin_core(twin).real_id
    split = getattr(twin.unwrapped, "split", None)
    if split is not None:
        make_kwargs.setdefault("split", split)
    return gym.make(env_id, **make_kwargs)


def same_game(options: Mapping[str, Any] | None, info: Mapping[str, Any]) -> dict[str, Any]:
    """Reset options that replay the game of an episode whose reset ``info`` is given."""
    pinned = dict(options or {})
    if "game_id" in info:
        pinned["game"] = info["game_id"]
    if "split" in info:
        pinned["split"] = info["split"]
    return pinned


def same_text(a: str, b: str) -> bool:
    """Whether two observations agree (exact match after ``strip()``, as single-step EM)."""
    return a.strip() == b.strip()
