"""The DESIGN.md text-env contract, checked for every registered real id.

Parametrised over the registry, so a new env is covered the moment it is
registered. Twins are checked in tests/envs/test_twin.py (they need a model).
"""

from __future__ import annotations

import pickle

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import wmgym

REAL_IDS = [i for i in wmgym.registered_ids() if not i.startswith("WM-")]
INFO_KEYS = {"task", "game_id", "won", "admissible_commands", "init_context"}


@pytest.fixture(params=REAL_IDS)
def env_id(request) -> str:
    return request.param


def _play(env: gym.Env, seed: int, n: int) -> list[str]:
    obs, info = env.reset(seed=seed)
    seen = [obs, info["init_context"]]
    for _ in range(n):
        commands = info["admissible_commands"] or ["look"]
        obs, _, terminated, truncated, info = env.step(commands[len(seen) % len(commands)])
        seen.append(obs)
        if terminated or truncated:
            break
    return seen


def test_check_env(env_id):
    env = gym.make(env_id)
    check_env(env.unwrapped, skip_render_check=True)
    env.close()


def test_info_keys_and_spaces(env_id):
    env = gym.make(env_id)
    obs, info = env.reset(seed=1)
    assert INFO_KEYS <= set(info)
    assert env.observation_space.contains(obs)
    assert info["admissible_commands"] == sorted(info["admissible_commands"])
    assert info["init_context"].strip()
    assert info["won"] is False
    action = info["admissible_commands"][0] if info["admissible_commands"] else "look"
    obs, reward, terminated, truncated, info = env.step(action)
    assert INFO_KEYS | {"action_valid"} <= set(info)
    assert isinstance(reward, float) and isinstance(terminated, bool) and truncated is False
    assert env.observation_space.contains(obs)
    env.close()


def test_seeded_determinism(env_id):
    a, b = gym.make(env_id), gym.make(env_id)
    assert _play(a, seed=7, n=5) == _play(b, seed=7, n=5)
    a.close()
    b.close()


def test_game_and_split_options(env_id):
    env = gym.make(env_id)
    unwrapped = env.unwrapped
    split = unwrapped.splits[-1]
    _, info = env.reset(seed=0, options={"game": 1, "split": split})
    _, info2 = env.reset(seed=99, options={"game": 1, "split": split})
    assert info["game_id"] == info2["game_id"]  # the option, not the seed, chose the game
    assert info["split"] == split
    with pytest.raises(ValueError, match="valid splits"):
        env.reset(options={"split": "no-such-split"})
    with pytest.raises(ValueError, match="out of range"):
        env.reset(options={"game": unwrapped.num_games(split), "split": split})
    with pytest.raises(ValueError, match="valid options"):
        env.reset(options={"level": 3})
    env.close()


@pytest.mark.parametrize("bad", ["", "   ", "x" * 5000])
def test_malformed_actions_answer_like_the_game(env_id, bad):
    env = gym.make(env_id)
    env.reset(seed=2)
    obs, reward, terminated, truncated, info = env.step(bad)
    assert obs == env.unwrapped.invalid_action_text
    assert info["action_valid"] is False
    assert reward == 0.0 and not terminated
    env.close()


def test_unknown_verb_is_not_an_exception(env_id):
    env = gym.make(env_id)
    env.reset(seed=2)
    obs, _, _, _, info = env.step("frobnicate the quux")
    assert isinstance(obs, str) and obs
    assert info["action_valid"] is False
    env.close()


@pytest.mark.parametrize("bad", [3, None, b"look", ["look"]])
def test_non_str_action_raises_type_error(env_id, bad):
    env = gym.make(env_id)
    env.reset(seed=0)
    with pytest.raises(TypeError, match=type(bad).__name__):
        env.step(bad)
    env.close()


def test_time_limit_truncates(env_id):
    env = gym.make(env_id, max_episode_steps=2)
    env.reset(seed=0)
    env.step("look")
    _, _, terminated, truncated, _ = env.step("look")
    assert truncated or terminated
    env.close()


def test_render_modes(env_id):
    env = gym.make(env_id, render_mode="ansi")
    obs, _ = env.reset(seed=0)
    env.step("look")
    text = env.render()
    assert obs in text and "> look" in text
    env.close()
    with pytest.raises(ValueError, match="render_mode"):
        gym.make(env_id, render_mode="rgb_array")


def test_vector_env(env_id):
    envs = gym.vector.SyncVectorEnv([lambda: gym.make(env_id) for _ in range(2)])
    obs, infos = envs.reset(seed=[0, 1])
    assert len(obs) == 2 and all(isinstance(o, str) for o in obs)
    obs, rewards, terminated, truncated, infos = envs.step(np.array(["look", "inventory"], dtype=object))
    assert rewards.shape == (2,) and all(isinstance(o, str) for o in obs)
    envs.close()


def test_env_pickles_before_reset(env_id):
    env = gym.make(env_id)
    clone = pickle.loads(pickle.dumps(env.unwrapped))
    assert type(clone) is type(env.unwrapped)
    env.close()


def test_unknown_id_suggests_valid_ones():
    with pytest.raises(gym.error.Error, match="Did you mean"):
        gym.make("TextWorl-v0")
