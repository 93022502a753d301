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


def test_sciworld_agent_reads_its_observations():
    from wmgym.agents.scripted.sciworld import (animal_of, choose_referent, parse_find_task, percent_down,
                                                temperature)

    assert parse_find_task("Your task is to find a(n) animal. First, focus on the thing. Then, move it to the green "
                           "box in the bedroom.") == {"kind": "animal", "box": "green box", "room": "bedroom"}
    assert percent_down("an inclined plane with a glass surface, with: a steel block approximately 79% down the "
                        "plane") == 79.0
    assert percent_down("an inclined plane with a glass surface, with: a steel block at the bottom of the plane") == 100
    assert temperature("the thermometer measures a temperature of 23 degrees celsius") == 23.0
    assert animal_of("baby baby mouse") == "mouse" and animal_of("egg giant tortoise") == "giant tortoise"
    prompt = ("Ambiguous request: Please enter the number for the action you intended (or blank to cancel):\n"
              "0:\tpick up metal pot (in cupboard, in kitchen)\n1:\tpick up metal pot (in inventory, in agent, in "
              "kitchen)\n")
    assert choose_referent("pick up metal pot", prompt) == "0"
    prompt = ("Ambiguous request: Please enter the number for the action you intended (or blank to cancel):\n"
              "0:\tpour glass cup (in table, in kitchen) in metal pot (in inventory, in agent, in kitchen)\n"
              "1:\tpour glass cup (in inventory, in agent, in kitchen) in metal pot (in inventory, in agent, in "
              "kitchen)\n")
    assert choose_referent("pour glass cup into metal pot", prompt) == "1"


@pytest.mark.slow
@pytest.mark.java
def test_sciworld_agent_wins_one_game_of_several_families():
    """One test game each of find, inclined planes, conductivity and melting point: the procedures read the task
    and the observations and win in the real env."""
    import gymnasium as gym

    from wmgym.agents import make_agent, play

    env = gym.make("SciWorld-v0", split="test", admissible_commands=False)
    try:
        for game, last in (("test/find-non-living-thing/225", "to orange box"),
                           ("test/inclined-plane-friction-named-surfaces/1123", "focus on inclined plane"),
                           ("test/test-conductivity-of-unknown-substances/496", "box"),
                           ("test/measure-melting-point-known-substance/337", "focus on orange box")):
            out = play(env, make_agent("scripted", "SciWorld-v0"), seed=0, options={"game": game})
            assert out["won"], (game, out["actions"])
            assert last in out["actions"][-1], (game, out["actions"])
    finally:
        env.close()
