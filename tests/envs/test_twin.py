"""WM-<Env>-v0: the twin contract for every registered twin id on a fake world model, then the twin with a tiny
random model and with one trained on real episodes."""

from __future__ import annotations

import math
import pickle

import gymnasium as gym
import pytest
from gymnasium.utils.env_checker import check_env

from contract_helpers import play, twin_id_params
from wm_fakes import EchoRule, FakeWorldModel

import wmgym
from wmgym.envs import env_class
from wmgym.envs.twin import TwinEnv
from wmgym.worldmodels import load_world_model
from wmgym.worldmodels.loading import train_default_command

REAL_IDS = [i for i in wmgym.registered_ids() if not i.startswith("WM-")]
TWIN_INFO_KEYS = {"task", "game_id", "won", "admissible_commands", "init_context", "action_valid", "wm_confidence",
                  "wm_parse_error"}


# ------------------------------------------------ the twin contract, for every WM-* id, on a fake world model
@pytest.fixture(scope="module", params=twin_id_params())
def twin_id(request) -> str:
    return request.param


def _twin(twin_id: str, **kwargs) -> gym.Env:
    """``twin_id`` on the echo fake ("You <action>."): never wins, so episodes run to the TimeLimit."""
    return gym.make(twin_id, model=FakeWorldModel(EchoRule()), **kwargs)


@pytest.fixture(scope="module")
def pair(twin_id):
    """A twin of ``twin_id`` on the fake and its real env, shared by the module's tests."""
    twin, real = _twin(twin_id), gym.make(gym.spec(twin_id).kwargs["real_id"])
    yield twin, real
    twin.close()
    real.close()


def test_twin_check_env(pair):
    check_env(pair[0].unwrapped, skip_render_check=True)


def test_twin_reset_is_the_real_game(pair):
    twin, real = pair
    version = env_class(real.spec.id).context_version
    for seed in (3, 4):
        t_obs, t_info = twin.reset(seed=seed)
        r_obs, r_info = real.reset(seed=seed)
        assert t_obs == r_obs
        for key in ("task", "game_id", "split", "init_context", "admissible_commands", "context_version"):
            assert t_info[key] == r_info[key], key
    assert t_info["context_version"] == version and twin.unwrapped.context_version == version
    obs, reward, terminated, truncated, info = twin.step("look")
    assert obs == "You look." and reward == 0.0 and not terminated and truncated is False  # from the model
    assert TWIN_INFO_KEYS | {"context_version"} <= set(info) and info["context_version"] == version


def test_twin_seeds_choose_the_game(pair):
    twin = pair[0]
    games = {seed: twin.reset(seed=seed)[1]["game_id"] for seed in (0, 1, 2)}
    assert twin.reset(seed=1)[1]["game_id"] == games[1]
    assert len(set(games.values())) >= 2, games
    assert play(twin, seed=5, n=3) == play(twin, seed=5, n=3)


def test_pickled_twin_plays_the_same_game(twin_id, pair):
    fresh = _twin(twin_id)
    clone = pickle.loads(pickle.dumps(fresh))
    fresh.close()
    assert type(clone.unwrapped) is TwinEnv and clone.spec.max_episode_steps == pair[0].spec.max_episode_steps
    assert play(clone, seed=6, n=3) == play(pair[0], seed=6, n=3)
    clone.close()


def test_twin_truncation_only_from_the_registered_time_limit(twin_id, pair):
    twin, limit = pair[0], gym.spec(twin_id).max_episode_steps
    assert limit == gym.spec(gym.spec(twin_id).kwargs["real_id"]).max_episode_steps
    twin.reset(seed=0)
    for t in range(1, limit + 1):
        _, _, terminated, truncated, _ = twin.step("look")
        assert not terminated and truncated is (t == limit), t
    assert twin.unwrapped.step("look")[3] is False  # the twin itself never says truncated


def test_every_real_id_has_a_twin():
    ids = set(wmgym.registered_ids())
    for real_id in REAL_IDS:
        assert f"WM-{real_id}" in ids
        assert gym.spec(f"WM-{real_id}").max_episode_steps == gym.spec(real_id).max_episode_steps


@pytest.mark.parametrize("real_id", REAL_IDS)
def test_missing_default_model_says_how_to_train_it(real_id):
    with pytest.raises(FileNotFoundError, match=train_default_command(real_id).replace("-", r"\-")):
        gym.make(f"WM-{real_id}")


@pytest.mark.parametrize("as_object", [False, True])
def test_check_env(tiny_model_dir, as_object):
    model = load_world_model(tiny_model_dir, max_new_tokens=8) if as_object else str(tiny_model_dir)
    env = gym.make("WM-TextWorld-v0", model=model, max_new_tokens=8) if not as_object else \
        gym.make("WM-TextWorld-v0", model=model)
    check_env(env.unwrapped, skip_render_check=True)  # deep-copies the spec's kwargs: a loaded model is shared
    env.close()


def test_reset_is_the_real_game_and_steps_come_from_the_model(tiny_model_dir):
    real = gym.make("TextWorld-v0")
    twin = gym.make("WM-TextWorld-v0", model=str(tiny_model_dir), max_new_tokens=6, render_mode="ansi")
    r_obs, r_info = real.reset(seed=5, options={"game": 2})
    t_obs, t_info = twin.reset(seed=5, options={"game": 2})
    assert t_obs == r_obs
    for key in ("task", "game_id", "init_context", "admissible_commands"):
        assert t_info[key] == r_info[key]
    obs, reward, terminated, truncated, info = twin.step("look")
    assert TWIN_INFO_KEYS <= set(info)
    assert twin.observation_space.contains(obs)
    assert isinstance(reward, float) and truncated is False
    assert math.isfinite(info["wm_confidence"]) and info["wm_confidence"] < 0
    assert "max_new_tokens" in info["wm_parse_error"] and info["action_valid"] is False  # 6 tokens: cut off
    assert info["admissible_commands"] == r_info["admissible_commands"]  # the reset's list, kept
    base = twin.unwrapped
    assert base.real_id == "TextWorld-v0" and base.init_context == r_info["init_context"]
    assert base.history == [("look", base.world_model.history(base.handle)[-1][1])]
    # A malformed action is answered by rule, as the real env does, and still enters the chat.
    obs, _, _, _, info = twin.step("   ")
    assert obs == "Nothing happens." and info["action_valid"] is False and info["wm_confidence"] == 0.0
    assert base.world_model.history(base.handle)[-1] == ("   ", "Nothing happens.")
    assert "> look" in twin.render()
    with pytest.raises(TypeError, match="int"):
        twin.step(3)
    twin.close()
    real.close()


def test_twins_share_one_loaded_model(tiny_model_dir):
    wm = load_world_model(tiny_model_dir, max_new_tokens=4)
    a = gym.make("WM-TextWorld-v0", model=wm)
    b = gym.make("WM-TextWorld-v0", model=wm)
    a.reset(seed=0, options={"game": 0})
    b.reset(seed=0, options={"game": 2})
    assert a.unwrapped.world_model is b.unwrapped.world_model and a.unwrapped.handle != b.unwrapped.handle
    c = gym.make("WM-TextWorld-v0", model=str(tiny_model_dir), max_new_tokens=4)
    d = gym.make("WM-TextWorld-v0", model=str(tiny_model_dir), max_new_tokens=4)
    assert c.unwrapped.world_model is d.unwrapped.world_model  # same name and settings: loaded once
    with pytest.raises(TypeError, match="WorldModel"):
        TwinEnv("TextWorld-v0", model=3.5)
    for env in (a, b, c, d):
        env.close()


@pytest.mark.slow
def test_trained_twin_replays_an_expert_episode_and_wins(trained_textworld_model_dir, textworld_expert_episodes):
    """A tiny model trained on real episodes: the twin reproduces them, wins with reward 1 and terminates."""
    episode = textworld_expert_episodes[1]
    env = gym.make("WM-TextWorld-v0", model=str(trained_textworld_model_dir), max_new_tokens=120)
    obs, info = env.reset(seed=episode.seed, options={"game": episode.game_id})
    assert obs == episode.initial_observation
    for i, step in enumerate(episode.steps):
        obs, reward, terminated, truncated, info = env.step(step.action)
        assert obs == step.observation
        assert info["wm_parse_error"] is None and info["action_valid"] is True
        assert info["wm_confidence"] > -0.5  # a memorised episode: the model is sure
        last = i == len(episode.steps) - 1
        assert terminated is last and info["won"] is last and reward == (1.0 if last else 0.0)
    env.close()


@pytest.mark.slow
def test_anchor_replaces_the_last_turn(trained_textworld_model_dir, textworld_expert_episodes):
    episode = textworld_expert_episodes[1]
    env = gym.make("WM-TextWorld-v0", model=str(trained_textworld_model_dir), max_new_tokens=120)
    env.reset(seed=0, options={"game": episode.game_id})
    twin = env.unwrapped
    twin.anchor("ignored: nothing generated yet")
    assert twin.history == []
    env.step(episode.steps[0].action)
    twin.anchor("You see a strange light.")
    assert twin.history[-1] == (episode.steps[0].action, "You see a strange light.")
    assert twin.world_model.history(twin.handle)[-1][1] == "You see a strange light."
    twin.anchor(episode.steps[0].observation, won=True)
    assert twin.history[-1][1].endswith(" [SUCCESS]")
    env.close()


def test_textworld_twin_reads_the_lose_banner():
    from wmgym.envs.textworld.env import TextWorldEnv

    assert TextWorldEnv.twin_extras("You eat the raw chicken.\n\n*** You lost! ***", False) == {"lost": True}
    assert TextWorldEnv.twin_extras("You open the fridge.", False) == {"lost": False}
