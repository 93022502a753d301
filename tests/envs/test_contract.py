"""The text-env contract of docs/design.md, checked for every registered real id.

Parametrised over the registry, so a new env is covered the moment it is
registered. Twins are checked in tests/envs/test_twin.py (with a fake world model).
"""

from __future__ import annotations

import pickle

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from contract_helpers import play as _play, real_id_params

from wmgym.envs import env_class

REAL_IDS = real_id_params()
INFO_KEYS = {"task", "game_id", "won", "admissible_commands", "init_context", "context_version"}


@pytest.fixture(scope="module", params=REAL_IDS)
def env_id(request) -> str:
    return request.param


@pytest.fixture(scope="module")
def made(env_id):
    """One env of ``env_id`` (registered wrappers included) shared by the tests that reset it first."""
    env = gym.make(env_id)
    yield env
    env.close()


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
    assert info["context_version"] == env_class(env_id).context_version
    action = info["admissible_commands"][0] if info["admissible_commands"] else "look"
    obs, reward, terminated, truncated, info = env.step(action)
    assert INFO_KEYS | {"action_valid"} <= set(info)
    assert info["context_version"] == env_class(env_id).context_version
    assert isinstance(reward, float) and isinstance(terminated, bool) and truncated is False
    assert env.observation_space.contains(obs)
    env.close()


def test_seeded_determinism(env_id, made):
    other = gym.make(env_id)
    assert _play(made, seed=7, n=5) == _play(other, seed=7, n=5)
    other.close()


def test_same_seed_same_game_different_seeds_different_games(made):
    games = {}
    for seed in (0, 1, 2):
        obs, info = made.reset(seed=seed)
        games[seed] = (info["game_id"], obs)
    assert made.reset(seed=2)[1]["game_id"] == games[2][0] and made.reset(seed=2)[0] == games[2][1]
    assert len({game_id for game_id, _ in games.values()}) >= 2, games  # the seed draws the game


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


def test_truncation_only_from_the_registered_time_limit(env_id, made):
    """The env itself never truncates; the registered TimeLimit truncates at exactly max_episode_steps."""
    limit = gym.spec(env_id).max_episode_steps
    assert made.spec.max_episode_steps == limit
    made.reset(seed=0)
    for t in range(1, limit + 1):
        _, _, terminated, truncated, _ = made.step("look")  # never wins or loses in any registered env
        assert not terminated and truncated is (t == limit), t
    bare = made.unwrapped  # without the wrapper the same episode runs on: an env never says truncated
    for _ in range(3):
        assert bare.step("look")[3] is False


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


def test_pickled_env_plays_the_same_game(env_id, made):
    env = gym.make(env_id)
    clone = pickle.loads(pickle.dumps(env))
    env.close()
    assert type(clone.unwrapped) is type(made.unwrapped) and clone.spec.max_episode_steps == made.spec.max_episode_steps
    assert _play(clone, seed=4, n=4) == _play(made, seed=4, n=4)  # same observations for the same actions
    clone.close()


def test_unknown_id_suggests_valid_ones():
    with pytest.raises(gym.error.Error, match="Did you mean"):
        gym.make("TextWorl-v0")
