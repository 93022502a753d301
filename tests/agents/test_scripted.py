"""Observation-only agents on real envs: they win what they should, and noise lowers their skill."""

from __future__ import annotations

import pytest

from wmgym.agents.scripted.alfworld import parse_task, receptacles
from wmgym.agents.scripted.textworld import quest_plan


def test_textworld_quest_plans_follow_the_instruction_grammar():
    task = ("Hey, thanks for coming over to the TextWorld today, there is something I need you to do for me. First, "
            "it would be a great idea if you could try to travel south. And then, take the rectangular passkey from "
            "the crate. Then, look and see that the rectangular chest is locked with the rectangular passkey. Got "
            "that? Good!")
    assert quest_plan(task) == ["go south", "take rectangular passkey",
                                "lock rectangular chest with rectangular passkey"]
    task = ("Welcome to another life changing session of TextWorld! Here is how to play! First, it would be a great "
            "idea if you could open the cuboid box. Having opened the cuboid box, recover the cookie from the cuboid "
            "box. And then, eat the cookie. Once that's all handled, you can stop!")
    assert quest_plan(task) == ["open cuboid box", "take cookie", "eat cookie"]
    assert quest_plan("Your objective is to take the nest of insects from the rack in the shower.") == \
        ["take nest of insects"]
    assert quest_plan("First of all, unlock the box. Then, put the mat into the box in the steam room.") == \
        ["unlock box with ?", "insert mat into box"]


def test_alfworld_task_parsing():
    assert parse_task("find two bread and put them in countertop.") == \
        {"kind": "place", "obj": "bread", "target": "countertop", "modify": None, "count": 2}
    assert parse_task("put a hot tomato in garbagecan.")["modify"] == "heat"
    assert parse_task("cool some tomato and put it in microwave.")["modify"] == "cool"
    assert parse_task("examine the creditcard with the floorlamp.") == \
        {"kind": "look", "obj": "creditcard", "target": "floorlamp", "modify": None, "count": 1}
    assert parse_task("dance") is None
    assert receptacles("Looking quickly around you, you see a bed 1, a drawer 2, and a shelf 1.") == \
        ["bed 1", "drawer 2", "shelf 1"]


@pytest.mark.slow
@pytest.mark.java
def test_sciworld_agent_solves_find_tasks():
    import gymnasium as gym

    from wmgym.agents import make_agent, play
    from wmgym.agents.scripted.sciworld import parse_find_task

    assert parse_find_task("Your task is to find a(n) animal. First, focus on the thing. Then, move it to the green "
                           "box in the bedroom.") == {"kind": "animal", "box": "green box", "room": "bedroom"}
    env = gym.make("SciWorld-v0", split="test")
    try:
        out = play(env, make_agent("scripted", "SciWorld-v0"), seed=0, options={"game": "test/find-non-living-thing/225"})
        assert out["won"], out["actions"]
        assert out["actions"][-1].endswith("to orange box")
    finally:
        env.close()
