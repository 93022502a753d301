"""W2RReplay edge cases: twin episodes (fake world model) replayed in the real TextWorld game."""

from __future__ import annotations

import gymnasium as gym
import pytest

from wm_fakes import COOKING_GAME, COOKING_WIN, replay_rule
from wmgym.wrappers import W2RReplay


def play(env, actions, **reset):
    env.reset(seed=0, options=COOKING_GAME, **reset)
    for i, action in enumerate(actions):
        obs, reward, terminated, truncated, info = env.step(action)
        if terminated or truncated:
            assert i == len(actions) - 1, f"the episode ended early, at step {i}"
            return info
        assert "w2r_won" not in info
    raise AssertionError("the episode did not end")


def test_faithful_twin_never_diverges(fake_wm, cooking_transcript):
    env = W2RReplay(gym.make("WM-TextWorld-v0", model=fake_wm(replay_rule(cooking_transcript))))
    info = play(env, COOKING_WIN)
    assert info["won"] and info["w2r_won"] is True
    assert info["w2r_first_divergence"] is None and info["w2r_steps"] == 5 and info["w2r_reward"] == 4.0


@pytest.mark.parametrize("k", [0, 2, 4])
def test_first_divergence_is_the_step_index(fake_wm, cooking_transcript, k):
    # From step k on the twin invents its observations but the agent keeps to the winning path,
    # so the twin never predicts the win and the episode ends by truncation at step 5.
    twin = gym.make("WM-TextWorld-v0", model=fake_wm(replay_rule(cooking_transcript, diverge_at=k)),
                    max_episode_steps=5)
    info = play(W2RReplay(twin), COOKING_WIN)
    assert not info["won"] and info["w2r_won"] is True
    assert info["w2r_first_divergence"] == k


def test_real_loss_mid_episode(fake_wm, cooking_transcript):
    # The twin thinks eating the parsley is harmless and the agent goes on; the real game is lost at step 1.
    twin = gym.make("WM-TextWorld-v0", model=fake_wm(replay_rule(cooking_transcript)), max_episode_steps=4)
    info = play(W2RReplay(twin), ["take parsley from fridge", "eat parsley", "look", "inventory"])
    assert info["w2r_won"] is False and info["w2r_first_divergence"] == 1 and info["w2r_steps"] == 2


def test_separate_real_env(fake_wm, cooking_transcript):
    real = gym.make("TextWorld-v0")
    env = W2RReplay(gym.make("WM-TextWorld-v0", model=fake_wm(replay_rule(cooking_transcript))), real)
    assert env.real is real and env._saved_kwargs == {"real": real}
    info = play(env, COOKING_WIN)
    assert info["w2r_won"] and info["w2r_first_divergence"] is None
    env.close()
    real.close()
