"""Actions that dumb-frotz would read as its own runtime commands never reach it."""

from __future__ import annotations

import gymnasium as gym
import pytest


@pytest.mark.parametrize("action", ["\\x", "\\help", "look \\", "take \\x00 apple"])
def test_backslash_actions_are_malformed_and_leave_the_game_playable(action):
    env = gym.make("TextWorld-v0")
    obs0, _ = env.reset(seed=0, options={"game": 0})
    obs, reward, terminated, truncated, info = env.step(action)  # used to hang (\x, \help) or crash frotz
    assert info["action_valid"] is False and reward == 0.0 and not terminated
    obs, *_ = env.step("look")
    assert "-= " in obs  # the game still answers
    env.close()
