"""format="word2world": every env renders Word2World's observation and init_context strings.

The reference strings below are written by hand from Word2World's rules (its
``scripts/collect_init_context/`` and its AgentGym env servers and clients; see
``envs/<name>/word2world.py``), not produced by the code under test.
"""

from __future__ import annotations

from types import SimpleNamespace

import gymnasium as gym
import pytest
from wm_fakes import EchoRule, FakeWorldModel

from wmgym.envs.alfworld.word2world import describe_state, entity, step_observation
from wmgym.envs.sciworld.word2world import format_description

HIDDEN = "# Environment Information (Only visible to Assistant)\n\n"
USER = "\n\n# User Environment Information (Displayed to User)\n\n"


def _fact(name: str, *args: str) -> SimpleNamespace:
    return SimpleNamespace(name=name, arguments=[SimpleNamespace(name=a) for a in args])


# ------------------------------------------------------------------------------------------ the base class
def test_format_is_checked_and_recorded():
    with pytest.raises(ValueError, match=r"format='agentgym'.*\['wmgym', 'word2world'\]"):
        gym.make("TextWorld-v0", format="agentgym")
    env = gym.make("TextWorld-v0")
    _, info = env.reset(seed=0, options={"game": 0})
    assert info["format"] == "wmgym"  # the default stays ours
    _, _, _, _, info = env.step("look")
    assert info["format"] == "wmgym"
    env.close()


# ------------------------------------------------------------------------------------------------ ALFWorld
ALF_GAME0_ACTIONS = ("go to cabinet 1,go to cabinet 2,go to cabinet 3,go to cabinet 4,go to countertop 1,"
                     "go to garbagecan 1,go to handtowelholder 1,go to sinkbasin 1,go to sinkbasin 2,go to toilet 1,"
                     "go to toiletpaperhanger 1,go to towelholder 1,help,inventory,look")
ALF_GAME0_FIRST = ("You are in the middle of a room. Looking quickly around you, you see a cabinet 4, a cabinet 3, "
                   "a cabinet 2, a cabinet 1, a countertop 1, a garbagecan 1, a handtowelholder 1, a sinkbasin 2, "
                   "a sinkbasin 1, a toilet 1, a toiletpaperhanger 1, and a towelholder 1.\n"
                   "Your task is to: put a spraybottle in toilet.\n"
                   "AVAILABLE ACTIONS: " + ALF_GAME0_ACTIONS)
ALF_GAME0_STATE = (
    "=== Objects on Receptacles ===\n"
    " - cabinet 1 is closed, if opened, on the cabinet 1, you see a candle 1, a plunger 1\n"
    " - cabinet 2 is closed, if opened, on the cabinet 2, you see a cloth 1, a plunger 2, a soapbar 1, "
    "a soapbottle 1, a spraybottle 1\n"
    " - cabinet 3 is closed, if opened, on the cabinet 3, you see a candle 2\n"
    " - cabinet 4 is closed, if opened, in it, you see nothing.\n"
    " - On the countertop 1, you see a spraybottle 2, a toiletpaper 1\n"
    " - On the garbagecan 1, you see a handtowel 1\n"
    " - On the toiletpaperhanger 1, you see a toiletpaper 2\n"
    " - On the towelholder 1, you see a towel 1"
)


def test_alfworld_train_game_0():
    env = gym.make("ALFWorld-v0", format="word2world")
    obs, info = env.reset(seed=0, options={"game": 0, "split": "train"})
    assert obs == ALF_GAME0_FIRST
    assert info["init_context"] == HIDDEN + ALF_GAME0_STATE + USER + ALF_GAME0_FIRST + "\n"
    assert info["format"] == "word2world" and info["task"] == "put a spraybottle in toilet."
    obs, _, _, _, info = env.step("go to toilet 1")
    assert obs == "You arrive at toilet 1. On the toilet 1, you see nothing."
    obs, _, _, _, info = env.step("go to garbagecan 1")
    assert obs == "You arrive at garbagecan 1. On the garbagecan 1, you see a handtowel 1."
    assert info["format"] == "word2world"
    env.close()


def test_alfworld_state_description_rules():
    """A kitchen: text order of names (cabinet 10 before cabinet 2), an open and a closed receptacle, contents
    sorted, receptacles holding nothing and not openable left out, toggle states."""
    facts = [
        _fact("receptacletype", "cabinet 2", "cabinettype"), _fact("receptacletype", "shelf 1", "shelftype"),
        _fact("openable", "cabinet 2"), _fact("openable", "cabinet 10"), _fact("openable", "fridge 1"),
        _fact("opened", "fridge 1"),
        _fact("inreceptacle", "mug 1", "cabinet 10"), _fact("inreceptacle", "apple 2", "fridge 1"),
        _fact("inreceptacle", "egg 1", "fridge 1"), _fact("inreceptacle", "bread 1", "countertop 1"),
        _fact("toggleable", "desklamp 1"), _fact("toggleable", "floorlamp 1"), _fact("istoggled", "floorlamp 1"),
        _fact("pickupable", "mug 1"),
    ]
    assert describe_state(facts) == (
        "=== Objects on Receptacles ===\n"
        " - cabinet 10 is closed, if opened, on the cabinet 10, you see a mug 1\n"
        " - cabinet 2 is closed, if opened, in it, you see nothing.\n"
        " - On the countertop 1, you see a bread 1\n"
        " - fridge 1 is opened, on the fridge 1, you see a apple 2, a egg 1\n"
        "\n"
        "=== Toggle States ===\n"
        " - desklamp 1 is off\n"
        " - floorlamp 1 is on"
    )
    assert describe_state([_fact("opened", "drawer 3"), _fact("openable", "drawer 3")]) == (
        "=== Objects on Receptacles ===\n - drawer 3 is opened, in it, you see nothing.")
    assert describe_state([]) == ""
    assert entity("Counter Top 1") == "countertop 1" and entity("Sink Basin") == "sinkbasin"
    assert step_observation("You arrive at loc 12. On the countertop 1, you see a mug 1.") == \
        "On the countertop 1, you see a mug 1."


# ------------------------------------------------------------------------------------------------ TextWorld
TW_GAME0_ROOM = ("I hope you're ready to go into rooms and interact with objects, because you've just entered "
                 "TextWorld! Your task for today is to eat the licorice strip.\n\n-= Shower =-\nYou've entered a "
                 "shower.\n\n\n\nThere is an exit to the west. Don't worry, it is unblocked.\n\n>")
TW_GAME0_ACTIONS = ("drop bug, drop fondue, drop key, drop licorice strip, drop salad, eat fondue, eat licorice strip, "
                    "eat salad, examine bug, examine fondue, examine key, examine licorice strip, examine salad, "
                    "go west, inventory, look")


def test_textworld_train_game_0_keeps_the_games_own_text():
    env = gym.make("TextWorld-v0", format="word2world")
    obs, info = env.reset(seed=0, options={"game": 0})
    assert obs.startswith("\n\n\n\n                    ________  ________  __    __  ________")  # TextWorld's banner
    assert TW_GAME0_ROOM in obs
    assert obs.endswith("-= Shower =-0/1\nAVAILABLE ACTIONS: " + TW_GAME0_ACTIONS)
    assert info["init_context"] == obs  # the first observation alone
    obs, reward, terminated, _, info = env.step("eat licorice strip")
    assert obs.startswith("\nYou eat the licorice strip. Not bad.\n\n\nYour score has just gone up by one point.\n\n\n"
                          "                                                       *** The End ***\n\nYou scored 1 "
                          "out of a possible 1, in 2 turns.\n\n\nWould you like to RESTART, RESTORE a saved game, "
                          "QUIT or UNDO the last command?\n>")
    assert reward == 1.0 and terminated and info["won"] and info["format"] == "word2world"
    env.close()


def test_textworld_train_game_2_is_the_raw_text_and_the_action_line():
    ours, theirs = gym.make("TextWorld-v0"), gym.make("TextWorld-v0", format="word2world")
    obs, info = ours.reset(seed=0, options={"game": 2})
    raw, w2w_info = theirs.reset(seed=0, options={"game": 2})
    text, line = raw.rsplit("\nAVAILABLE ACTIONS: ", 1)
    assert obs in text and text != obs  # our observation is the game's text cleaned; theirs is uncleaned
    assert line == ", ".join(info["admissible_commands"])  # TextWorld's list is sorted, as ours
    assert w2w_info["init_context"] == raw and w2w_info["task"] == info["task"]
    ours.close()
    theirs.close()


# ------------------------------------------------------------------------------------------------ SciWorld
def test_sciworld_description_layout():
    text = format_description("Completed keys: \n0\tfalse\tGoalFind\tfocus on substance",
                              ["open OBJ", "look around"],
                              [("kitchen", "This room is called the kitchen. In it, you see: \n\tthe agent\n",
                                ["agent", "kitchen"]),
                               ("outside", "This outside location is called the outside.", [])])
    assert text == ("\n=== Goal Progress ===\nCompleted keys: \n0\tfalse\tGoalFind\tfocus on substance\n"
                    "\n=== Possible Actions ===\n - open OBJ\n - look around\n"
                    "\n=== Per-Room Observations ===\n"
                    "== Room: kitchen ==\nThis room is called the kitchen. In it, you see: \n\tthe agent\n"
                    "Possible Objects: agent, kitchen\n\n"
                    "== Room: outside ==\nThis outside location is called the outside.\nPossible Objects: (none)\n\n")


@pytest.mark.java
def test_sciworld_boil_game():
    ours = gym.make("SciWorld-v0", task="boil")
    look, info = ours.reset(seed=0, options={"game": 0})
    ours.close()
    env = gym.make("SciWorld-v0", task="boil", format="word2world")
    obs, w2w = env.reset(seed=0, options={"game": 0})
    assert obs.startswith("Your task is to boil water. For compounds without a boiling point, combusting the substance "
                          "is also acceptable. First, focus on the substance. Then, take actions that will cause it to "
                          "change its state of matter.\nThis room is called the hallway. In it, you see: \n\tthe agent\n")
    assert obs.endswith("\n" + look)  # the task description, a newline, the first look
    ctx = w2w["init_context"]
    assert ctx.startswith(HIDDEN + "\n=== Goal Progress ===\nCompleted keys: \n")
    assert "\n\n=== Possible Actions ===\n - activate OBJ\n - close OBJ\n" in ctx
    assert " - teleport OBJ\n - use OBJ on OBJ\n - wait\n - wait1\n\n=== Per-Room Observations ===\n== Room: " in ctx
    assert "\n== Room: kitchen ==\n" in ctx and "\nPossible Objects: " in ctx
    assert ctx.endswith("\n\n" + USER.lstrip("\n") + obs + "\n")
    assert w2w["game_id"] == info["game_id"] and w2w["format"] == "word2world"
    step_obs, *_ = env.step("open door to kitchen")
    assert step_obs == "The door is now open."  # steps are ScienceWorld's text, as AgentGym's server returns it
    env.close()


# ------------------------------------------------------------------------------------------------ the twin
def test_twin_passes_the_format_to_its_real_env():
    real = gym.make("TextWorld-v0", format="word2world")
    obs, info = real.reset(seed=0, options={"game": 0})
    model = FakeWorldModel(EchoRule())
    twin = gym.make("WM-TextWorld-v0", model=model, format="word2world")
    tobs, tinfo = twin.reset(seed=0, options={"game": 0})
    assert tobs == obs and tinfo["init_context"] == info["init_context"] and tinfo["format"] == "word2world"
    assert model.chats[twin.unwrapped.handle][0] == info["init_context"]  # the model is prompted in Word2World's text
    _, _, _, _, tinfo = twin.step("look")
    assert tinfo["format"] == "word2world"
    twin.close()
    real.close()
    with pytest.raises(ValueError, match="embedded default twin"):
        gym.make("WM-TextWorld-v0", format="word2world")
