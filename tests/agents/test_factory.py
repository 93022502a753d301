"""One spec grammar for collection and benchmarks; each env's scripted agent is found through the env."""

from __future__ import annotations

import gymnasium as gym
import pytest

from wmgym.agents import AGENT_SPECS, make_agent
from wmgym.agents.factory import scripted_entry_point
from wmgym.envs import env_class, real_id, registered_ids

REAL_IDS = [i for i in registered_ids() if real_id(i) == i]


def test_real_ids_are_found():
    assert {"TextWorld-v0", "ALFWorld-v0", "SciWorld-v0"} <= set(REAL_IDS)
    assert all(gym.spec(i).entry_point != gym.spec(f"WM-{i}").entry_point for i in REAL_IDS)


@pytest.mark.parametrize("real_id", REAL_IDS)
def test_declared_scripted_agent_comes_through_the_factory_for_real_and_twin(real_id):
    entry = getattr(env_class(real_id), "scripted_agent", None)
    if entry is None:
        with pytest.raises(ValueError, match=f"no scripted agent for 'WM-{real_id}'"):
            make_agent("scripted", f"WM-{real_id}")
        return
    module, _, name = entry.partition(":")
    assert module.startswith("wmgym.agents.scripted."), entry
    for env_id in (real_id, f"WM-{real_id}"):
        assert scripted_entry_point(env_id) == entry
        agent = make_agent("scripted", env_id)
        assert type(agent).__module__ == module and type(agent).__name__ == name
        assert agent.name == "scripted" and not agent.privileged
        noisy = make_agent("scripted:0.25", env_id)
        assert noisy.name == "scripted:0.25" and type(noisy.base).__name__ == name


def test_unknown_spec_lists_the_valid_ones():
    with pytest.raises(ValueError, match="unknown agent 'genius'") as e:
        make_agent("genius", "TextWorld-v0")
    for spec in AGENT_SPECS:
        assert repr(spec) in str(e.value)
    assert {"expert", "noisy-expert:EPS", "explore", "random", "scripted", "scripted:EPS", "react"} <= set(AGENT_SPECS)


def test_bad_agent_is_named_with_the_choices():
    with pytest.raises(ValueError, match=r"'expert' reads the engine.*scripted:EPS"):
        make_agent("expert", "TextWorld-v0")
    with pytest.raises(ValueError, match=r"'expert\+score:0.3' reads the engine"):
        make_agent("expert+score:0.3", "WM-TextWorld-v0")
    with pytest.raises(ValueError, match="no scripted agent for 'NoSuchEnv-v0': 'NoSuchEnv-v0' is not a registered"):
        make_agent("scripted", "NoSuchEnv-v0")
    with pytest.raises(ValueError, match="must be a number"):
        make_agent("scripted:lots", "TextWorld-v0")
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        make_agent("scripted:2", "TextWorld-v0")


@pytest.mark.parametrize("spec", ["expert", "noisy-expert:0.3", "explore", "expert+score:0.3", "random",
                                  "scripted", "scripted:0.2", "noisy-expert:0.3+score:0.5"])
def test_every_spec_of_today_names_itself(spec):
    """The name is what collected episodes record as ``policy`` (and cache files are named by)."""
    agent = make_agent(spec, "TextWorld-v0", privileged=True)
    assert agent.name == spec


def test_random_reads_the_live_commands_only_when_privileged():
    """Collection's random draws from the live admissible commands; the benchmarks' from what a twin reports
    too (the reset's commands and the directions the observation names)."""
    obs, reset_info = "A door leads north.", {"admissible_commands": ["open box"]}
    live = {"admissible_commands": ["take key"]}
    for privileged, expected in ((True, {"take key"}), (False, {"open box", "go north", "look", "inventory"})):
        agent = make_agent("random", "TextWorld-v0", privileged=privileged)
        agent.reset(obs, reset_info, 0)
        assert {agent.act(obs, live) for _ in range(60)} == expected
