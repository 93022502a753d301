"""Privileged collection agents (expert, noisy expert, explore, +score:P) read the engine of a real env."""

from __future__ import annotations

import pytest

from wmgym.agents import make_agent


def test_policies_by_name():
    assert make_agent("noisy-expert:0.3", "TextWorld-v0", privileged=True).name == "noisy-expert:0.3"
    assert make_agent("noisy-expert", "TextWorld-v0", privileged=True).name == "noisy-expert:0.2"
    with pytest.raises(ValueError, match="valid agents"):
        make_agent("genius", "TextWorld-v0", privileged=True)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        make_agent("noisy-expert:3", "TextWorld-v0", privileged=True)


def test_score_queries_need_an_env_with_a_score_command():
    import gymnasium as gym

    agent = make_agent("expert+score:0.9", "ALFWorld-v0", privileged=True)
    assert agent.name == "expert+score:0.9"
    env = gym.make("ALFWorld-v0")
    obs, info = env.reset(seed=0, options={"game": 0, "split": "train"})
    with pytest.raises(ValueError, match="no score command"):
        agent.reset(obs, info, 0, env=env)
        for _ in range(20):
            agent.act(obs, info)
    env.close()
    with pytest.raises(ValueError, match=r"valid: '\+score:P'"):
        make_agent("expert+hint:0.3", "ALFWorld-v0", privileged=True)
    with pytest.raises(ValueError, match=r"\(0, 1\)"):
        make_agent("random+score:1", "ALFWorld-v0", privileged=True)


def test_explore_tries_every_move_and_open_once_before_anything_else():
    """In ALFWorld the explore policy goes to every receptacle, opening each closed one it stands at, never
    twice, before it falls back to random play."""
    import gymnasium as gym

    env = gym.make("ALFWorld-v0", max_episode_steps=200)
    obs, info = env.reset(seed=0, options={"game": 0, "split": "train"})
    policy = make_agent("explore", "ALFWorld-v0", privileged=True)
    policy.reset(obs, info, 0, env=env)
    receptacles = {c for c in info["admissible_commands"] if c.startswith("go to ")}
    tried: list[str] = []
    for _ in range(150):
        untried = [c for c in info["admissible_commands"] if c not in tried]
        fresh = [c for c in untried if c.startswith("open ")] or [c for c in untried if c.startswith("go ")]
        action = policy.act(obs, info)
        if not fresh:
            break
        assert action in fresh  # opens what is here before it moves on
        tried.append(action)
        obs, _, _, _, info = env.step(action)
    env.close()
    opened = {a[len("open "):] for a in tried if a.startswith("open ")}
    assert not fresh and receptacles <= set(tried) and {"cabinet 1", "cabinet 2"} <= opened
    assert policy.name == "explore"


def test_expert_needs_the_env():
    """A privileged agent reset without the env says how to give it one instead of failing on ``None``."""
    agent = make_agent("expert", "TextWorld-v0", privileged=True)
    agent.reset("You are in a kitchen.", {"admissible_commands": ["look"]}, 0)
    with pytest.raises(ValueError, match="reads the engine: give it the env"):
        agent.act("You are in a kitchen.", {"admissible_commands": ["look"]})


class _Engine:
    """An engine whose expert always has the same move."""

    def expert_action(self) -> str:
        return "expert move"


class _Env:
    unwrapped = _Engine()


def test_noise_keeps_the_random_streams_collected_data_was_made_with():
    """noisy-expert flips its coin on the episode seed and picks on seed + 1; scripted:EPS-style noise over an
    observation-only agent uses one stream [seed, 1] for both, apart from the agent's own. Collected episodes
    and cached data depend on these draws staying as they were."""
    import numpy as np

    from wmgym.agents import Noisy, RandomAgent, candidate_commands

    info = {"admissible_commands": ["a", "b", "c"]}
    agent = make_agent("noisy-expert:0.5", "TextWorld-v0", privileged=True)
    agent.reset("obs", info, 7, env=_Env())
    coin, pick = np.random.default_rng(7), np.random.default_rng(8)
    want = ["abc"[int(pick.integers(3))] if coin.random() < 0.5 else "expert move" for _ in range(40)]
    assert [agent.act("obs", info) for _ in range(40)] == want and len(set(want)) == 4

    noisy = Noisy(RandomAgent(), 0.5)
    noisy.reset("A door leads north.", info, 7)
    choices = candidate_commands("A door leads north.", ["a", "b", "c"])
    shared, own = np.random.default_rng([7, 1]), np.random.default_rng(7)
    want = [choices[int((shared if shared.random() < 0.5 else own).integers(len(choices)))] for _ in range(40)]
    assert [noisy.act("A door leads north.", {}) for _ in range(40)] == want
    assert noisy.name == "random:0.5"
