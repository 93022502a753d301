"""SciWorld-v0 on ScienceWorld's real simulator (Java): splits, game ids, the room-by-room context,
reward and termination, the expert, the JVM lifecycle and the admissible commands.

The registry-wide contract (check_env, determinism, vector envs) is in test_contract.py.
"""

from __future__ import annotations

import os
import re
import signal

import gymnasium as gym
import pytest

from wmgym.envs.sciworld import env as sciworld_env
from wmgym.envs.sciworld.context import cached_context, context_path, doors_of, room_of
from wmgym.envs.sciworld.engine import JVMDiedError, task_names, variation_splits
from wmgym.envs.sciworld.env import SciWorldEnv
from wmgym.envs.sciworld.expert import shortest_path

pytestmark = pytest.mark.java

#: Short gold paths spread over the task families (test split), so the expert tests stay quick;
#: grow-plant's gold path answers one of its own ambiguity prompts ("0").
EXPERT_GAMES = ["find-animal/225", "chemistry-mix/24", "power-component/15", "use-thermometer/405",
                "grow-plant/93", "test-conductivity/675"]


@pytest.fixture(scope="module")
def env():
    env = SciWorldEnv(split="test")
    yield env
    env.close()


@pytest.fixture(scope="module")
def fast_env():
    """No admissible commands: ~5x faster steps for the long expert runs."""
    env = SciWorldEnv(split="test", admissible_commands=False)
    yield env
    env.close()


def _play_expert(env: SciWorldEnv, limit: int = 300) -> tuple[bool, float, int]:
    """Play the expert to the end; the total reward counts from the score at reset (some tasks start above 0)."""
    total, steps, terminated = float(env._info["score"]), 0, False
    while not terminated and steps < limit:
        action = env.expert_action()
        assert action is not None, f"the expert gave up after {steps} steps"
        _, reward, terminated, _, info = env.step(action)
        total, steps = total + reward, steps + 1
    return info["won"], total, steps


def _objects(text: str) -> list[str]:
    """A room's object lines, order and door states aside (ScienceWorld lists some objects in arbitrary order)."""
    lines = [re.sub(r" \(that is (open|closed)\)", "", line.strip()) for line in text.splitlines()[1:]]
    return sorted(line for line in lines if line)


def test_splits_are_scienceworlds_own(env):
    env.reset(options={"game": "test/boil/22"})
    server = env._jvm.server
    for task in ["boil", "identify-life-stages-2", "power-component", "grow-fruit", "lifespan-shortest-lived"]:
        env._jvm.load(task, 0)
        java = {"train": list(server.getVariationsTrain()), "dev": list(server.getVariationsDev()),
                "test": list(server.getVariationsTest())}
        assert variation_splits(env._jvm.num_variations(task)) == java, task
        assert env.variations(task, "dev") == java["dev"]
    for n in (10, 14, 30, 1386):  # a partition of all variations, in order
        parts = variation_splits(n)
        assert parts["train"] + parts["dev"] + parts["test"] == list(range(n))
    assert env.num_games("test") == sum(len(env.variations(t, "test")) for t in task_names()) == 1819
    assert len(task_names()) == 30 and task_names()[0] == "boil"


def test_game_ids_and_task_selection(env):
    _, info = env.reset(options={"game": "test/boil/22"})
    assert (info["game_id"], info["task_name"], info["variation"]) == ("test/boil/22", "boil", 22)
    index = env._games("test").index(("boil", 22))
    for game in [index, str(index), "boil/22", "1-1/22"]:
        assert env._game_index("test", game) == index
    with pytest.raises(ValueError, match=r"not in split 'test'; valid variations: 21\.\.29"):
        env.reset(options={"game": "boil/3"})
    with pytest.raises(ValueError, match="valid tasks"):
        env.reset(options={"game": "bake-a-cake/1"})
    with pytest.raises(ValueError, match="not in split"):
        env.reset(options={"game": "train/boil/3"})
    with pytest.raises(ValueError, match="valid tasks"):
        SciWorldEnv(task="bake-a-cake")
    melt = SciWorldEnv(split="test", task="1-2")
    try:
        assert melt.num_games() == len(env.variations("melt", "test"))
        assert melt._game_index("test", "melt") in range(melt.num_games())
        assert {melt.game_id("test", i).split("/")[1] for i in range(melt.num_games())} == {"melt"}
        with pytest.raises(ValueError, match="not among this env's tasks"):
            melt.reset(options={"game": "boil/22"})
    finally:
        melt.close()


def test_rooms_one_by_one(env):
    """Every recorded room text is that room, checked against walking there in the real game."""
    obs, info = env.reset(options={"game": "test/boil/22"})
    ctx = cached_context("boil", 22)
    rooms = ctx["rooms"]
    assert len(rooms) == 10 and len(set(rooms.values())) == 10
    assert room_of(obs) == ctx["start_room"]
    graph = {room: set(doors_of(text)) for room, text in rooms.items()}
    for room, text in rooms.items():
        assert room_of(text) == room and f"[{room}]\n{text.strip()}" in info["init_context"]
        env._jvm.load("boil", 22)  # walk there on a fresh load, through the doors
        server = env._jvm.server
        server.step("look around")
        path = shortest_path(graph, ctx["start_room"], room)
        for here, nxt in zip(path, path[1:]):
            assert server.step(f"open door to {nxt}") and server.step(f"go to {nxt}").startswith("You move to")
        seen = server.freeActionLook()
        assert room_of(seen) == room
        assert _objects(seen) == _objects(text), room


def test_a_teleport_that_did_not_happen_is_refused(env, monkeypatch):
    """The published pipeline's bug: without the teleport simplification the teleport silently fails."""
    env.reset(options={"game": "test/boil/22"})
    monkeypatch.setattr(env._jvm, "load", lambda task, variation, simplifications="", gold_path=False:
                        env._jvm.server.load(task, variation, "", False))  # teleportAction dropped
    with pytest.raises(RuntimeError, match="refusing to record a wrong room|names no known room"):
        sciworld_env.gather_rooms(env._jvm, "boil", 22)


def test_reset_uses_the_cache_and_leaves_no_trace(env, monkeypatch):
    env.reset(options={"game": "test/melt/21"})
    assert context_path("melt", 21).exists()
    monkeypatch.setattr(sciworld_env, "gather_rooms", lambda *a: pytest.fail("gathered twice"))
    _, info = env.reset(options={"game": "test/melt/21"})
    assert int(env._jvm.server.getNumMoves()) == 0  # "look around" takes no time; gathering's teleports did
    obs, _, _, _, info = env.step("teleport to kitchen")  # the gathering's simplification is gone
    assert obs == "No known action matches that input." and info["action_valid"] is False


def test_admissible_commands(env):
    obs, info = env.reset(options={"game": "test/boil/22"})
    commands = info["admissible_commands"]
    assert commands == sorted(commands) and "look around" in commands and "reset task" not in commands
    assert not [c for c in commands if c.startswith(("connect ", "disconnect "))]  # not an electrical task
    for command in commands[:: max(1, len(commands) // 8)]:  # a spread of them, each executed by the game
        env.reset(options={"game": "test/boil/22"})
        _, _, _, _, info = env.step(command)
        assert info["action_valid"], command
    _, info = env.reset(options={"game": "test/power-component/15"})
    assert any(c.startswith("connect ") for c in info["admissible_commands"])
    obs, reward, _, _, info = env.step("reset task")
    assert obs == "Nothing happens." and info["action_valid"] is False and reward == 0.0


def test_ambiguity_prompt(env):
    env.reset(options={"game": "test/boil/22"})
    ctx = cached_context("boil", 22)
    graph = {room: set(doors_of(text)) for room, text in ctx["rooms"].items()}
    path = shortest_path(graph, ctx["start_room"], "outside")  # walk outside: 3 doors there
    for nxt in path[1:]:
        env.step(f"open door to {nxt}")
        env.step(f"go to {nxt}")
    assert room_of(env._jvm.server.freeActionLook()) == "outside"
    obs, _, _, _, info = env.step("look at door")
    assert obs.startswith("Ambiguous request") and info["action_valid"] is False
    assert info["admissible_commands"] == ["0", "1", "2"]
    obs, _, _, _, info = env.step("1")
    assert obs.startswith("A door to the") and info["action_valid"] is True


def test_failure_terminates_with_negative_reward(fast_env):
    fast_env.reset(options={"game": "test/find-animal/225"})
    obs, reward, terminated, truncated, info = fast_env.step("focus on air")
    assert obs == "You focus on the air."
    assert terminated and not truncated and info["won"] is False
    assert reward == -100.0 and info["score"] == -100


@pytest.mark.parametrize("game", EXPERT_GAMES)
def test_expert_wins(fast_env, game):
    fast_env.reset(options={"game": game})
    won, total, _ = _play_expert(fast_env)
    assert won and total == 100.0


def test_expert_steers_back_after_a_detour(fast_env):
    _, info = fast_env.reset(options={"game": "test/find-animal/225"})
    first = fast_env.expert_action()
    assert first == "open door to hallway"
    for detour in ["open door to hallway", "go to hallway", "open door to kitchen", "go to kitchen", "inventory"]:
        fast_env.step(detour)
    won, total, steps = _play_expert(fast_env)
    assert won and total == 100.0


def test_jvm_reused_then_restarted_after_death(fast_env):
    fast_env.reset(options={"game": "test/power-component/15"})
    pid = fast_env.jvm_pid
    fast_env.reset(options={"game": "test/power-component/15"})
    assert fast_env.jvm_pid == pid  # one JVM across resets
    fast_env.step(fast_env.expert_action())
    os.kill(pid, signal.SIGKILL)  # the JVM dies mid-episode
    with pytest.raises(JVMDiedError, match="reset"):
        fast_env.step("look around")
    fast_env.reset(options={"game": "test/power-component/15"})
    assert fast_env.jvm_pid != pid
    won, total, _ = _play_expert(fast_env)
    assert won and total == 100.0


def test_close_stops_the_jvm():
    env = SciWorldEnv(split="test", admissible_commands=False)
    env.reset(options={"game": "test/power-component/15"})
    proc = env._jvm.proc
    env.close()
    assert proc.poll() is not None and env.jvm_pid is None


def test_registered_with_scienceworlds_step_limit():
    env = gym.make("SciWorld-v0")
    assert env.spec.max_episode_steps == 100 and env.unwrapped.splits == ("train", "dev", "test")
    env.close()


def test_missing_java_names_the_package(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("JAVA_HOME", raising=False)
    with pytest.raises(RuntimeError, match="apt-get install openjdk-17-jre-headless"):
        SciWorldEnv()
