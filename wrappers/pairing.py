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


def make_real(twin: gym.Env, real: gym.Env | str | None = None, **make_kwargs: Any) -> tuple[gym.Env, bool]:
    """The real env that pairs with ``twin``, and whether the wrapper owns (must close) it.

    ``real`` itself when it is an env; made from ``real`` when it is an id (with
    the twin's default split, so both play the same game list); by default the
    twin's own real env, which the twin only resets, so no second engine (JVM,
    game process) starts.
    """
    if isinstance(real, gym.Env):
        return real, False
    core = twin_core(twin)
    if real is None:
        return core.real_env, False
    split = getattr(core, "split", None)
    if split is not None:
        make_kwargs.setdefault("split", split)
    return gym.make(real, **make_kwargs), True


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
