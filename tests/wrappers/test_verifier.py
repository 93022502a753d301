"""ActionVerifier on TextWorld's cooking game: edge cases with the fake world model."""

from __future__ import annotations

import gymnasium as gym
import pytest

from wm_fakes import COOKING_GAME as GAME
from wm_fakes import COOKING_WIN as WIN_PATH
from wmgym.wrappers import ActionVerifier, first_word_in


def meal_rule(context, history, action):
    """The fake twin: eating the meal wins, eating anything else loses."""
    if action == "eat meal":
        return "You eat the meal. Not bad. [SUCCESS]", -0.2
    return f"You {action}. *** You lost! ***", -0.3


@pytest.fixture
def cooking():
    env = gym.make("TextWorld-v0")
    yield env
    env.close()


def test_blocked_eat_leaves_real_env_untouched(cooking, fake_wm):
    wm = fake_wm(meal_rule)
    env = ActionVerifier(cooking, wm, irreversible=["eat"], budget=3)
    env.reset(seed=0, options=GAME)
    obs, _, _, _, info = env.step("take parsley from fridge")
    assert info["verified"] is None and info["irreversible"] is False
    obs, reward, terminated, truncated, info = env.step("eat parsley")
    assert obs == "You eat parsley. *** You lost! ***"
    assert (reward, terminated, truncated) == (0.0, False, False)
    assert info["verified"] is False and info["verify_budget_left"] == 2
    # The real game never saw the eat: the parsley is still carried and the game goes on to a win.
    obs, _, terminated, _, info = env.step("inventory")
    assert "parsley" in obs and not terminated
    for action in WIN_PATH[1:]:
        obs, reward, terminated, _, info = env.step(action)
    assert terminated and info["won"] and info["verified"] is True
    assert env.used == 2 and env.blocked == 1


def test_twin_chat_mirrors_real_history(cooking, fake_wm):
    wm = fake_wm(meal_rule)
    env = ActionVerifier(cooking, wm, irreversible=first_word_in("eat"))
    _, info = env.reset(seed=0, options=GAME)
    real = []
    for action in WIN_PATH[:-1]:
        obs, *_ = env.step(action)
        real.append((action, obs))
    env.step("eat meal")
    handle, action, history = wm.steps[-1]
    assert action == "eat meal" and history == real
    assert wm.chats[env._handle][0] == info["init_context"]
    assert handle not in wm.chats  # the look-ahead fork was freed
    assert len(wm.steps) == 1  # only the irreversible action was tried in the twin


def test_budget_exhausted_passes_unverified(cooking, fake_wm):
    wm = fake_wm(meal_rule)
    env = ActionVerifier(cooking, wm, irreversible=["eat"], budget=1)
    env.reset(seed=0, options=GAME)
    env.step("take parsley from fridge")
    _, _, terminated, _, info = env.step("eat parsley")
    assert info["verified"] is False and info["verify_budget_left"] == 0 and not terminated
    obs, _, terminated, _, info = env.step("eat parsley")  # budget spent: goes to the real game and loses
    assert info["verified"] is None and info["budget_exhausted"] is True
    assert terminated and not info["won"] and "You lost" in obs
    assert len(wm.steps) == 1
    env.reset(seed=0, options=GAME)  # the budget is per episode
    assert env.budget_left == 1


def test_zero_budget_never_asks_the_twin(cooking, fake_wm):
    wm = fake_wm(meal_rule)
    env = ActionVerifier(cooking, wm, irreversible=["eat"], budget=0)
    env.reset(seed=0, options=GAME)
    env.step("take parsley from fridge")
    _, _, terminated, _, info = env.step("eat parsley")
    assert terminated and info["budget_exhausted"] and wm.steps == []


@pytest.mark.parametrize("kwargs, match", [
    ({"irreversible": "eat"}, "list of verbs"),
    ({"irreversible": ["eat"], "budget": -1}, "budget"),
    ({"irreversible": [""]}, "verb"),
])
def test_bad_arguments(cooking, fake_wm, kwargs, match):
    with pytest.raises((TypeError, ValueError), match=match):
        ActionVerifier(cooking, fake_wm(meal_rule), **kwargs)


def test_records_constructor_args(cooking, fake_wm):
    wm = fake_wm(meal_rule)
    env = ActionVerifier(cooking, wm, irreversible=["eat"], budget=2)
    assert env._saved_kwargs["budget"] == 2 and env._saved_kwargs["twin"] is wm
