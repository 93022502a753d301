"""The TextWorld twin's context (v3): rooms, the map, things (and what opening each closed one prints) rendered as
the engine shows them, and the scoring with the winning banner."""

from __future__ import annotations

import re
import warnings

import gymnasium as gym
import pytest

from wmgym.envs.textworld import context as tc
from wmgym.envs.textworld import games as textworld_games
from wmgym.envs.textworld.env import TextWorldEnv, clean_feedback

#: Train-split games: three custom (rooms, doors, containers) and three cooking games (food states, cookbook).
_CUSTOM = [i for i in range(40) if textworld_games.game_spec("train", i)["kind"] == "custom"][:3]
_COOKING = [i for i in range(40) if textworld_games.game_spec("train", i)["kind"] == "cooking"][:3]


def _sections(index: int) -> dict[str, str]:
    return dict(tc.sections(textworld_games.ensure_game("train", index).parent))


def _walk(index: int, moves: list | None = None, opened: dict | None = None):
    """(look text, {examine command: text}) of every room the engine reaches by walking from the start; fills
    ``moves`` with (room header, go command, header it leads to) and ``opened`` with {open command: text}."""
    import textworld

    path = textworld_games.ensure_game("train", index)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        env = textworld.start(str(path), request_infos=textworld.EnvInfos(admissible_commands=True))
        frontier, seen = [(env, env.reset())], set()
        while frontier:
            e, s = frontier.pop(0)
            c = e.copy()
            look = clean_feedback(c.step("look")[0].feedback)
            if look.split("\n")[0] in seen:
                continue
            seen.add(look.split("\n")[0])
            examined = {}
            for cmd in s.admissible_commands or []:
                if cmd.startswith("examine "):
                    c = e.copy()
                    # Inform's "(the key)" clarification line answers an ambiguous noun, not the description.
                    examined[cmd] = re.sub(r"^\([^)\n]*\)\n", "", clean_feedback(c.step(cmd)[0].feedback))
                elif cmd.startswith("open ") and opened is not None:
                    c = e.copy()
                    opened[cmd] = clean_feedback(c.step(cmd)[0].feedback)
                elif cmd.startswith("go "):
                    c = e.copy()
                    arrived = c.step(cmd)[0]
                    if moves is not None and arrived.feedback.lstrip().startswith("-="):
                        moves.append((look.split("\n")[0], cmd, clean_feedback(arrived.feedback).split("\n")[0]))
                    frontier.append((c, arrived))
            yield look, examined


@pytest.mark.parametrize("index", _CUSTOM + _COOKING)
def test_rendered_rooms_and_things_are_the_engines_text(index):
    """Every room reachable on foot reads as ``look`` shows it, every visible thing as ``examine`` shows it."""
    sec = _sections(index)
    texts = re.split(r"\n\n(?=-= )", sec["Rooms (as look shows them at the start):"])
    rooms = {text.split("\n")[0]: text for text in texts}
    things = sec["Things (as examine shows them at the start):"]
    checked = 0
    for look, examined in _walk(index):
        assert rooms[look.split("\n")[0]] == look
        for cmd, text in examined.items():
            assert f"- {cmd[len('examine '):]}: {text}" in things, (cmd, text)
            checked += 1
    assert checked >= 2


@pytest.mark.parametrize("index", _CUSTOM + _COOKING)
def test_map_and_openings_are_what_the_engine_does(index):
    """Every move the engine makes on foot is a map line, and every opening of a closed container prints what
    the thing's "Opened, it shows:" line says."""
    sec = _sections(index)
    moves, opened = [], {}
    for _ in _walk(index, moves, opened):
        pass
    game_map = sec["Map (where each way out of a room leads):"].split("\n")
    for room, cmd, dest in moves:
        assert f"- From {room}, {cmd}: {dest}" in game_map
    things = sec["Things (as examine shows them at the start):"]
    for cmd, text in opened.items():
        if text.startswith("You open the "):  # a container (a door prints "You open door.")
            assert f"- {cmd[len('open '):]}: " in things and f"Opened, it shows: {text}\n" in things + "\n", cmd
    if game_map == ["- No way out."]:  # a one-room game
        assert not moves
    else:
        assert moves or index in _COOKING, "no move checked: every exit of the start room is a closed door"


def test_some_openings_reveal_things_and_mass_nouns_take_some():
    """Across the sampled games an opening lists its things; an Inform "some" article is kept ("some milk")."""
    revealing = [i for i in _CUSTOM + _COOKING if "Opened, it shows: You open the" in
                 _sections(i)["Things (as examine shows them at the start):"]]
    assert revealing
    st = tc._State(names={"f_0": "milk", "f_1": "apple"}, types={"c_0": "c"}, articles={"f_0": "some"},
                   contents={"c_0": ["f_0", "f_1"]})
    st.names["c_0"] = "fridge"
    assert tc.open_text("c_0", st) == "You open the fridge, revealing some milk and an apple."
    st.contents["c_0"] = []
    assert tc.open_text("c_0", st) == "You open the fridge."


def test_food_names_carry_their_state_and_quotes_are_informs():
    """Cooking games print food with its cut and cooking state and the cookbook's quotes as Inform does."""
    texts = "\n".join(v for i in _COOKING for v in _sections(i).values())
    assert re.search(r"\b(raw|sliced|diced|chopped|fried|roasted|grilled) \w+", texts)
    assert "Cooking: A Modern Approach" in texts and "'Cooking" not in texts


@pytest.mark.parametrize("index", [_CUSTOM[0], _COOKING[0]])
def test_scoring_matches_the_game(index):
    """The stated maximum is the engine's and the quests' points add up to it."""
    env = gym.make("TextWorld-v0")
    obs, info = env.reset(options={"game": index})
    ctx = info["init_context"]
    assert f"- The maximum score is {info['max_score']};" in ctx
    assert sum(int(n) for n in re.findall(r"^- (\d+) points? when ", ctx, re.M)) == info["max_score"] > 0
    assert f"*** The End *** You scored {info['max_score']} out of a possible {info['max_score']}, in" in ctx
    assert ctx.index("Rooms (as look") < ctx.index("Map (where") < ctx.index("Things (as examine") \
        < ctx.index("Scoring:") < ctx.index("First observation:")
    assert TextWorldEnv.context_version == 4
    env.close()


def test_cooking_losses_are_listed_once():
    lines = _sections(_COOKING[0])["Scoring:"].split("\n")
    assert any(line.startswith("- The game is lost when ") for line in lines)
    assert len(lines) == len(set(lines))


def test_losses_do_not_depend_on_the_order_the_game_file_lists_them():
    """TextWorld writes a quest's fail events in no fixed order: two generations of the same cooking game listed
    its losses differently, so the same game had two contexts. The scoring sorts them."""
    import textworld

    game = textworld.Game.load(str(textworld_games.ensure_game("train", _COOKING[0]).parent / "game.json"))
    before = tc.scoring(game)
    assert any(line.startswith("The game is lost when") for line in before)
    for q in game.quests:
        q.fail_events = list(reversed(q.fail_events))
    assert tc.scoring(game) == before


def test_unknown_inform_condition_is_refused():
    st = tc._State(names={"c_0": "box"}, types={"c_0": "c"})
    assert tc.render("[if c_0 is open]open[otherwise]shut[end if]", st) == "shut"
    with pytest.raises(ValueError, match="unsupported Inform condition"):
        tc.render("[if c_0 is shiny]x[end if]", st)
