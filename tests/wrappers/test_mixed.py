"""MixedEnv: presets, errors, per-episode sampling, vector envs (real envs, twins with the fake model)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from wmgym.wrappers import MIXES, MixedEnv
from wmgym.wrappers.mixed import resolve_members

GAME = {"game": 4, "split": "train"}


def echo_rule(context, history, action):
    return f"You {action}.", -0.5


def test_presets_and_twin_names():
    assert resolve_members("mix3") == ["ALFWorld-v0", "SciWorld-v0", "TextWorld-v0"]
    assert resolve_members("Mix4")[-1] == "WebShop-v0"
    assert resolve_members("wm-mix5") == ["WM-" + i for i in MIXES["mix5"]]
    assert resolve_members(["TextWorld-v0"], twin=True) == ["WM-TextWorld-v0"]
    with pytest.raises(ValueError, match=r"unknown mix 'mix9'.*'mix3'.*'wm-mix3'"):
        resolve_members("mix9")
    with pytest.raises(ValueError, match="duplicate member ids \\['TextWorld-v0'\\]"):
        resolve_members(["TextWorld-v0", "TextWorld-v0"])
    with pytest.raises(ValueError, match="at least one"):
        resolve_members([])


@pytest.mark.parametrize("name", ["mix3", "mix4", "mix5", "wm-mix3"])
def test_unregistered_members_are_named(name):
    missing = [i for i in resolve_members(name) if i not in gym.registry]
    if not missing:  # every member is registered by now: the mix builds (members are made lazily)
        assert MixedEnv(name).member_ids == resolve_members(name)
        return
    with pytest.raises(gym.error.UnregisteredEnv) as err:
        MixedEnv(name)
    for env_id in missing:
        assert env_id in str(err.value)


def test_unknown_id_is_named():
    with pytest.raises(gym.error.UnregisteredEnv, match=r"\['NoSuchEnv-v0'\]"):
        MixedEnv(["TextWorld-v0", "NoSuchEnv-v0"])


@pytest.mark.parametrize("weights, match", [
    ([1.0], "1 weights for 2 members"),
    ([1.0, -1.0], ">= 0"),
    ([0.0, 0.0], "not all 0"),
    ({"ALFWorld-v0": 1.0}, "unknown members \\['ALFWorld-v0'\\]"),
])
def test_bad_weights(weights, match):
    with pytest.raises(ValueError, match=match):
        MixedEnv(["TextWorld-v0", "WM-TextWorld-v0"], weights)


def test_sampling_follows_weights_and_seed():
    env = MixedEnv(["TextWorld-v0", "WM-TextWorld-v0"], {"TextWorld-v0": 3, "WM-TextWorld-v0": 1})
    np.testing.assert_allclose(env.weights, [0.75, 0.25])
    env.np_random, _ = gym.utils.seeding.np_random(0)
    draws = [env._draw()[0] for _ in range(4000)]
    assert abs(np.mean(np.array(draws) == 0) - 0.75) < 0.03
    other = MixedEnv(["TextWorld-v0", "WM-TextWorld-v0"], [3, 1])
    env.np_random, _ = gym.utils.seeding.np_random(1)
    other.np_random, _ = gym.utils.seeding.np_random(1)
    assert [env._draw() for _ in range(20)] == [other._draw() for _ in range(20)]


def test_real_and_twin_members_play(fake_wm):
    wm = fake_wm(echo_rule)
    env = MixedEnv(["TextWorld-v0", "WM-TextWorld-v0"], member_kwargs={"WM-TextWorld-v0": {"model": wm}})
    seen = {}
    for seed in range(8):
        obs, info = env.reset(seed=seed, options=GAME)
        assert info["game_id"] == "train/00004"
        obs, _, _, _, info = env.step("take parsley from fridge")
        seen[info["active_env"]] = obs
        assert env.observation_space.contains(obs)
    assert seen["WM-TextWorld-v0"] == "You take parsley from fridge."
    assert seen["TextWorld-v0"].startswith("You take the parsley from the fridge.")
    # Same seed, same member and the same member seed (hence game); draws come from the mix's np_random.
    runs = [(env.reset(seed=3, options=GAME)[1]["active_env"], env.active_env.unwrapped.np_random.integers(1 << 30))
            for _ in range(2)]
    assert runs[0] == runs[1]
    env.close()


def test_under_sync_vector_env(fake_wm):
    wm = fake_wm(echo_rule)

    def make():
        return MixedEnv(["TextWorld-v0", "WM-TextWorld-v0"], member_kwargs={"WM-TextWorld-v0": {"model": wm}})

    envs = gym.vector.SyncVectorEnv([make, make, make])
    _, info = envs.reset(seed=[0, 1, 2], options=GAME)
    assert set(info["active_env"]) <= {"TextWorld-v0", "WM-TextWorld-v0"}
    obs, reward, terminated, truncated, info = envs.step(("look", "inventory", "take parsley from fridge"))
    assert len(obs) == 3 and reward.shape == (3,) and not terminated.any()
    assert list(info["active_env"]) == [e.member_ids[e.active] for e in envs.envs]
    envs.close()


def test_member_with_other_spaces_is_refused():
    other = gym.make("CartPole-v1")
    with pytest.raises(ValueError, match="identical spaces"):
        MixedEnv(["TextWorld-v0", other])


def test_records_constructor_args():
    env = MixedEnv(["TextWorld-v0"], [1.0], split="test")
    assert env._saved_kwargs == {"envs": ["TextWorld-v0"], "weights": [1.0], "twin": False, "member_kwargs": None,
                                 "split": "test"}
    assert env.member(0).unwrapped.split == "test"


def test_real_mix_of_two_engines():
    env = MixedEnv(["ALFWorld-v0", "TextWorld-v0"], [1, 1])
    active = []
    for seed in range(6):
        _, info = env.reset(seed=seed, options={"game": 0})
        obs, _, _, _, step_info = env.step(env.expert_action())
        assert step_info["active_env"] == info["active_env"] and env.observation_space.contains(obs)
        assert step_info["action_valid"]
        active.append(info["active_env"])
    assert set(active) == {"ALFWorld-v0", "TextWorld-v0"}
    assert type(env.member(0).unwrapped).__name__ == "ALFWorldEnv"
    env.close()


def test_mix_of_wrapped_twins(fake_wm):
    from wmgym.wrappers import W2RReplay

    wm = fake_wm(echo_rule)
    env = MixedEnv([W2RReplay(gym.make(f"WM-{i}", model=wm, max_episode_steps=2)) for i in ("ALFWorld-v0",
                                                                                         "TextWorld-v0")])
    assert env.member_ids == ["WM-ALFWorld-v0", "WM-TextWorld-v0"]
    seen = set()
    for seed in range(4):
        env.reset(seed=seed, options={"game": 0})
        env.step("look")
        obs, _, _, truncated, info = env.step("inventory")
        assert truncated and obs == "You inventory." and info["w2r_won"] is False and info["w2r_steps"] == 2
        seen.add(info["active_env"])
    assert seen == {"WM-ALFWorld-v0", "WM-TextWorld-v0"}
