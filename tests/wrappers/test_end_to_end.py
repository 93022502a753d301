"""The wrappers end to end: real TextWorld games and a tiny world model trained on them.

The model is trained from scratch (tokenizer and weights) on two real
episodes of the cooking game: the expert's win and a loss by eating the raw
parsley. It memorises them, so it is a twin that is right on those paths
and unsure elsewhere, which is what the wrappers have to handle.
"""

from __future__ import annotations

import gymnasium as gym
import pytest

from wm_fakes import COOKING_GAME, COOKING_WIN
from wmgym.training.collect import run_episode
from wmgym.wrappers import ActionVerifier, MixedEnv, RealAnchoring, W2RReplay

pytestmark = pytest.mark.slow

LOSS = ["take parsley from fridge", "eat parsley"]


class Scripted:
    """Plays a fixed list of actions."""

    name = "scripted"

    def __init__(self, actions: list[str]):
        self.actions = iter(actions)

    def reset(self, observation, info, seed, env=None) -> None:
        pass

    def act(self, observation, info) -> str:
        return next(self.actions)


@pytest.fixture(scope="module")
def cooking_model(tmp_path_factory) -> str:
    """A tiny world model trained on real episodes of the cooking game (a model directory)."""
    from wmgym.worldmodels.protocol import episode_messages
    from wmgym.training.tiny import build_tiny_model, fit_tiny_model

    env = gym.make("TextWorld-v0")
    episodes = [run_episode(env, Scripted(a), seed=0, options=COOKING_GAME) for a in [COOKING_WIN, LOSS]]
    env.close()
    assert [e.won for e in episodes] == [True, False] and episodes[1].steps[-1].terminated
    chats = [episode_messages(e) for e in episodes]
    out = build_tiny_model(tmp_path_factory.mktemp("cooking-wm"), [m["content"] for c in chats for m in c],
                           vocab_size=1000, hidden_size=64, intermediate_size=128)
    losses = fit_tiny_model(out, chats, steps=200, lr=1e-2)  # the prompts hold every room and thing (context v2)
    assert losses[-1] < 0.05 < losses[0], f"the tiny model did not learn the episodes: {losses[0]} -> {losses[-1]}"
    return str(out)


def make_twin(model: str, **kwargs) -> gym.Env:
    return gym.make("WM-TextWorld-v0", model=model, max_new_tokens=96, **kwargs)


def test_verifier_blocks_the_losing_eat_and_passes_the_meal(cooking_model):
    real = gym.make("TextWorld-v0")
    env = ActionVerifier(real, make_twin(cooking_model), irreversible=["eat"], budget=2)
    env.reset(seed=0, options=COOKING_GAME)
    env.step("take parsley from fridge")
    obs, reward, terminated, _, info = env.step("eat parsley")
    assert info["verified"] is False and not terminated and reward == 0.0
    assert "You lost" in obs  # the twin's prediction, returned instead of playing it
    # The real game never ate the parsley: the win path still wins (the twin's chat is the real history).
    for action in COOKING_WIN[1:]:
        obs, reward, terminated, _, info = env.step(action)
    assert terminated and info["won"] and info["verified"] is True
    assert (env.used, env.blocked) == (2, 1)
    env.close()


def test_w2r_replays_the_twin_episode_in_the_real_game(cooking_model):
    env = W2RReplay(make_twin(cooking_model))
    env.reset(seed=0, options=COOKING_GAME)
    for action in COOKING_WIN:
        obs, reward, terminated, truncated, info = env.step(action)
    assert terminated and info["won"], f"the twin did not predict the win: {obs!r}"
    assert info["w2r_won"] is True and info["w2r_first_divergence"] is None and info["w2r_steps"] == 5
    env.close()
    # The losing path, cut at its length: the twin predicts the loss text; whether it also ends the
    # episode depends on the env reading a loss from text (twin_extras), and so does the divergence.
    env = W2RReplay(make_twin(cooking_model, max_episode_steps=len(LOSS)))
    env.reset(seed=0, options=COOKING_GAME)
    for action in LOSS:
        obs, reward, terminated, truncated, info = env.step(action)
    assert "You lost" in obs and not info["won"] and (terminated or truncated)
    assert info["w2r_won"] is False and info["w2r_steps"] == 2
    assert info["w2r_first_divergence"] == (None if terminated else 1)
    env.close()


#: The winning path with a command the model never saw inserted.
#: A detour the memorised episodes never show and the prompt does not answer ("examine cookbook" is answered
#: by the prompt since TextWorld's context version 2 lists every thing as examine shows it).
#: The detour comes last but one: before it the twin is on its memorised path (so it does not end the episode
#: early, which it did at random off that path), after it only the real end is left.
DETOUR = [*COOKING_WIN[:-1], "inventory", COOKING_WIN[-1]]
AWAY = DETOUR.index("inventory")


def test_anchoring_every_step_keeps_the_chat_real(cooking_model):
    env = RealAnchoring(make_twin(cooking_model), every=1)
    env.reset(seed=0, options=COOKING_GAME)
    real, agreed = [], []
    for action in DETOUR:
        obs, _, terminated, _, info = env.step(action)
        assert info["anchored"] and obs == info["real_observation"]
        real.append((action, obs + (" [SUCCESS]" if info["won"] else "")))
        agreed.append(info["agreed"])
    assert terminated and info["won"] and info["real_won"]
    assert env.unwrapped.history == real  # every later prediction started from reality
    assert agreed[0] and not agreed[AWAY]  # memorised step right, unseen command wrong
    env.close()


def test_anchoring_under_confidence(cooking_model):
    # The tiny twin is sure of its memorised first step (mean log-prob about -0.001) and less sure of
    # the unseen command (CI machines differ in the second decimal, so a fixed threshold was flaky).
    # The threshold sits between the two as this machine's twin reports them.
    twin = make_twin(cooking_model)
    twin.reset(seed=0, options=COOKING_GAME)
    confidences = [twin.step(action)[4]["wm_confidence"] for action in DETOUR[:AWAY + 1]]
    sure, unsure = confidences[0], confidences[AWAY]
    twin.close()
    assert unsure < sure, "the twin is not less sure of an unseen command than of a memorised one"
    threshold = (sure + unsure) / 2
    env = RealAnchoring(make_twin(cooking_model), min_confidence=threshold)
    env.reset(seed=0, options=COOKING_GAME)
    reasons = []
    for action in DETOUR:
        obs, _, terminated, _, info = env.step(action)
        expected = "confidence" if info["wm_confidence"] < threshold else "real_end" if terminated else None
        assert info["anchor_reason"] == expected, (action, info["wm_confidence"])
        reasons.append(info["anchor_reason"])
    assert reasons[0] is None and reasons[AWAY] == "confidence"
    assert terminated and info["won"]
    env.close()


def test_mixed_real_and_trained_twin_under_vector_env(cooking_model):
    def make():
        return MixedEnv(["TextWorld-v0", "WM-TextWorld-v0"],
                        member_kwargs={"WM-TextWorld-v0": {"model": cooking_model, "max_new_tokens": 96}})

    envs = gym.vector.SyncVectorEnv([make, make])
    _, info = envs.reset(seed=[0, 5], options=COOKING_GAME)
    for action in COOKING_WIN:
        _, reward, terminated, _, info = envs.step((action, action))
    assert terminated.all() and info["won"].all()
    assert sorted(info["active_env"]) == sorted(e.member_ids[e.active] for e in envs.envs)
    envs.close()
