"""Observation-only agents on real envs: they win what they should, and noise lowers their skill."""

from __future__ import annotations

import pytest

from wmgym.benchmarks.agents_alfworld import parse_task, receptacles
from wmgym.benchmarks.agents_textworld import quest_plan


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
def test_alfworld_agents_real_success_spread(tmp_path):
    from bench_checks import check_run_folder
    from wmgym.benchmarks import consistency

    out = tmp_path / "alf"
    assert consistency.main(["--env", "ALFWorld-v0", "--real-only", "--games", "3", "--agents",
                             "scripted,scripted:0.5,random", "--out", str(out)]) == 0
    data = check_run_folder(out, "consistency")
    env = data["results"]["envs"]["ALFWorld-v0"]
    assert env["split"] == "valid_unseen"
    agents = env["agents"]
    # Pick-and-place, look-at-under-lamp and clean-then-place: the scripted agent solves all three.
    assert agents["scripted"]["real"] == {"rate": 1.0, "wins": 3, "n": 3}
    assert agents["random"]["real"]["wins"] <= agents["scripted:0.5"]["real"]["wins"] <= 3
    assert all(a["wm"] is None and a["cr"] is None for a in agents.values())


def test_spread_games_covers_the_split():
    from wmgym.benchmarks.twins import spread_games

    assert spread_games(10, 20) == list(range(10))
    assert spread_games(1000, 4) == [0, 250, 500, 750]
    assert len(spread_games(1017, 200)) == 200


@pytest.mark.slow
def test_gold_episodes_are_collected_once_and_cached(tmp_path):
    from wmgym.benchmarks.twins import gold_episodes

    eps = gold_episodes("ALFWorld-v0", 3, policies=("expert",), split="valid_unseen", cache_dir=tmp_path)
    assert [e.index for e in eps] == [0, 66, 133] and all(e.won for e in eps)
    assert {e.split for e in eps} == {"valid_unseen"} and {e.seed for e in eps} == {0, 66, 133}
    (cache,) = tmp_path.glob("*.jsonl")
    size = cache.stat().st_size
    again = gold_episodes("ALFWorld-v0", 3, policies=("expert",), split="valid_unseen", cache_dir=tmp_path)
    assert [e.to_json() for e in again] == [e.to_json() for e in eps] and cache.stat().st_size == size


@pytest.mark.slow
@pytest.mark.java
def test_sciworld_agent_solves_find_tasks():
    import gymnasium as gym

    from wmgym.benchmarks.agents import make_agent, play
    from wmgym.benchmarks.agents_sciworld import parse_find_task

    assert parse_find_task("Your task is to find a(n) animal. First, focus on the thing. Then, move it to the green "
                           "box in the bedroom.") == {"kind": "animal", "box": "green box", "room": "bedroom"}
    env = gym.make("SciWorld-v0", split="test")
    try:
        out = play(env, make_agent("scripted", "SciWorld-v0"), seed=0, options={"game": "test/find-non-living-thing/225"})
        assert out["won"], out["actions"]
        assert out["actions"][-1].endswith("to orange box")
    finally:
        env.close()
