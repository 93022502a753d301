"""SciWorld-v0 in Word2World's strings (``format="word2world"``).

Rules read from Word2World's ``scripts/collect_init_context/collect_wm_instruct_sciworld.py`` and its
AgentGym SciWorld server and client; our own code:

- First observation (what the agent sees, and the system prompt's user part): ScienceWorld's task
  description, a newline, then the text of the first move (``look around``) on a plain load.
- Later observations: ScienceWorld's step text, unchanged (as wmgym's default).
- State description, gathered on its own load of the variation with the ``teleportAction``
  simplification after one ``look around``: ``=== Goal Progress ===`` (the goal-progress text),
  ``=== Possible Actions ===`` (the action templates in the simulator's order, one `` - `` line each),
  ``=== Per-Room Observations ===`` then, for each room of the object tree in its order, after typing
  ``teleport <room>`` on that same load: ``== Room: <room> ==``, the free look's text (stripped),
  ``Possible Objects: a, b`` (``(none)`` when empty) and a blank line. Word2World types ``teleport <room>``
  (without ScienceWorld's ``to``), so where the parser does not take it the player stays where it was and
  the room's heading shows the previous room's text; the checkpoints were trained on exactly that, so it is
  kept here. The description starts with a newline, as Word2World's does.

Gathering costs one load and a move per room (about a second); it is cached per variation under
``WMGYM_HOME/sciworld/word2world/``.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from wmgym.envs.sciworld.engine import ScienceWorldJVM, cache_dir
from wmgym.envs.word2world import system_prompt
from wmgym.paths import atomic_write

#: Bumped when the gathered description changes, so cached ones are gathered again.
DESCRIPTION_VERSION = 1


def object_tree(jvm: ScienceWorldJVM) -> dict:
    """The simulator's object tree (it writes it as JSON into a folder it is given)."""
    with tempfile.TemporaryDirectory(prefix="wmgym-sciworld-tree-") as tmp:
        msg = jvm.server.getObjectTree(tmp)
        if msg:
            raise RuntimeError(f"ScienceWorld gave no object tree: {msg}")
        return json.loads((Path(tmp) / "objectTree.json").read_text())


def format_description(goal_progress: str, actions: list[str], rooms: list[tuple[str, str, list[str]]]) -> str:
    """The description text from its parts: ``rooms`` holds ``(room, look text, possible objects)``."""
    text = f"\n=== Goal Progress ===\n{goal_progress}\n"
    text += "\n=== Possible Actions ===\n" + "".join(f" - {a}\n" for a in actions)
    text += "\n=== Per-Room Observations ===\n"
    for room, look, objects in rooms:
        text += f"== Room: {room} ==\n{look.strip()}\n"
        text += "Possible Objects:" + (" " + ", ".join(objects) if objects else " (none)") + "\n\n"
    return text


def gather_description(jvm: ScienceWorldJVM, task: str, variation: int) -> str:
    """Word2World's state description of ``(task, variation)``, gathered on a fresh load (module docstring)."""
    server = jvm.server
    jvm.load(task, variation, "teleportAction")
    server.step("look around")
    goal = str(server.getGoalProgressStr() or "")
    actions = [str(a) for a in server.getPossibleActions()]
    names = [r.get("name") for r in (object_tree(jvm).get("contents") or {}).values() if isinstance(r, dict)]
    rooms = []
    for room in (n for n in names if n):
        server.step(f"teleport {room}")
        rooms.append((room, str(server.freeActionLook()), [str(o) for o in server.getPossibleObjects()]))
    return format_description(goal, actions, rooms)


def description(jvm: ScienceWorldJVM, task: str, variation: int) -> str:
    """The cached description of ``(task, variation)``, gathered first if missing. Leaves the JVM loaded
    with something else than the episode: load the variation for play afterwards."""
    path = cache_dir() / "word2world" / task / f"{variation}.json"
    if path.exists():
        data = json.loads(path.read_text())
        if data.get("version") == DESCRIPTION_VERSION:
            return data["description"]
    text = gather_description(jvm, task, variation)
    atomic_write(path, json.dumps({"version": DESCRIPTION_VERSION, "task": task, "variation": variation,
                                   "description": text}))
    return text


def first_observation(task_description: str, look: str) -> str:
    """The reset text as AgentGym's SciWorld client shows it."""
    return f"{task_description}\n{look}"


def init_context(description_text: str, first: str) -> str:
    """Word2World's SciWorld system prompt."""
    return system_prompt(description_text, first)
