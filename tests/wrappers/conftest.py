"""Fixtures of the wrapper tests: the fake world model and the real cooking game's transcript."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from wm_fakes import COOKING_GAME, COOKING_WIN, FakeWorldModel, Rule


@pytest.fixture
def fake_wm() -> Callable[[Rule], FakeWorldModel]:
    """Build a :class:`FakeWorldModel` from a rule."""
    return FakeWorldModel


@pytest.fixture(scope="session")
def cooking_transcript() -> list[tuple[str, str, bool]]:
    """``(action, real observation, won)`` of the expert's path through the cooking game, from the real env."""
    import gymnasium as gym

    env = gym.make("TextWorld-v0")
    env.reset(seed=0, options=COOKING_GAME)
    out = []
    for action in COOKING_WIN:
        obs, _, _, _, info = env.step(action)
        out.append((action, obs, bool(info["won"])))
    env.close()
    return out
