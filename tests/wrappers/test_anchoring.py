"""RealAnchoring edge cases: the real TextWorld game beside a twin driven by the fake world model."""

from __future__ import annotations

import gymnasium as gym
import pytest

from wm_fakes import COOKING_GAME, COOKING_WIN
from wmgym.wrappers import RealAnchoring


def twin_saying(wm, **kwargs):
    return gym.make("WM-TextWorld-v0", model=wm, **kwargs)


def echo(context, history, action):
    return f"Twin: {action}.", -0.1


def test_anchors_exactly_every_k_steps(fake_wm):
    wm = fake_wm(echo)
    env = RealAnchoring(twin_saying(wm), every=2)
    env.reset(seed=0, options=COOKING_GAME)
    anchored, returned = [], []
    for action in COOKING_WIN[:4]:
        obs, _, terminated, _, info = env.step(action)
        anchored.append((info["anchored"], info["anchor_reason"]))
        returned.append(obs)
        assert info["twin_observation"] == f"Twin: {action}." and not terminated
    assert anchored == [(False, None), (True, "every"), (False, None), (True, "every")]
    chat = wm.chats[env.unwrapped.handle][1]
    # Anchored turns hold the real observation (what the step returned), the others the twin's text.
    assert [text for _, text in chat] == ["Twin: take parsley from fridge.", returned[1],
                                          "Twin: dice parsley with knife.", returned[3]]
    assert returned[1] == "You take the knife from the counter." and env.anchors == 2
    # The prediction after an anchored step was made from the real observation.
    assert wm.steps[2][2][1] == ("take knife from counter", returned[1])


def test_anchors_under_confidence_threshold(fake_wm):
    def rule(context, history, action):
        return f"Twin: {action}.", {"look": -2.0, "inventory": -1.0}.get(action, -0.1)

    env = RealAnchoring(twin_saying(fake_wm(rule)), min_confidence=-1.0)
    env.reset(seed=0, options=COOKING_GAME)
    reasons = []
    for action in ["look", "inventory", "take parsley from fridge", "look"]:
        obs, _, _, _, info = env.step(action)
        reasons.append(info["anchor_reason"])
        assert obs == (info["real_observation"] if info["anchored"] else info["twin_observation"])
    assert reasons == ["confidence", None, None, "confidence"]  # -1.0 is not under -1.0


def test_real_end_forces_an_anchor_and_ends_the_episode(fake_wm):
    env = RealAnchoring(twin_saying(fake_wm(echo)), every=100)
    env.reset(seed=0, options=COOKING_GAME)
    env.step("take parsley from fridge")
    obs, reward, terminated, truncated, info = env.step("eat parsley")
    assert info["anchor_reason"] == "real_end" and terminated and not info["won"]
    assert "You lost" in obs and info["twin_observation"] == "Twin: eat parsley."


def test_agreement_and_win_through_anchoring(fake_wm, cooking_transcript):
    from wm_fakes import replay_rule

    env = RealAnchoring(twin_saying(fake_wm(replay_rule(cooking_transcript, diverge_at=2))), every=3)
    env.reset(seed=0, options=COOKING_GAME)
    agreed = [env.step(a)[-1]["agreed"] for a in COOKING_WIN[:-1]]
    assert agreed == [True, True, False, False]
    obs, reward, terminated, _, info = env.step("eat meal")
    assert terminated and info["won"] and info["real_won"] and info["anchor_reason"] == "real_end"


def test_separate_real_env_plays_the_same_game(fake_wm):
    twin = twin_saying(fake_wm(echo))
    env = RealAnchoring(twin, "TextWorld-v0", every=1)
    assert env.real is not twin.unwrapped.real_env
    for seed in (3, None):
        obs, info = env.reset(seed=seed, options=COOKING_GAME)
        assert info["real_observation"] == obs and info["game_id"] == "train/00004"
        obs, _, _, _, info = env.step("inventory")
        assert info["anchored"] and obs == info["real_observation"]
    env.close()


def test_same_game_pins_the_real_episode():
    from wmgym.wrappers.pairing import same_game

    info = {"game_id": "test/00007", "split": "test", "task": "t"}
    assert same_game(None, info) == {"game": "test/00007", "split": "test"}
    assert same_game({"game": 1, "split": "train"}, info) == {"game": "test/00007", "split": "test"}


def test_bad_arguments(fake_wm):
    twin = twin_saying(fake_wm(echo))
    with pytest.raises(ValueError, match="every=K"):
        RealAnchoring(twin)
    with pytest.raises(ValueError, match="every must be an int >= 1, got 0"):
        RealAnchoring(twin, every=0)
    with pytest.raises(TypeError, match="not a twin env"):
        RealAnchoring(gym.make("TextWorld-v0"), every=1)
    assert RealAnchoring(twin, every=5, min_confidence=-1)._saved_kwargs == {
        "real": None, "every": 5, "min_confidence": -1}
