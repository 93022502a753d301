"""The initial-state context of a ScienceWorld variation: every room as it is at the start.

The world model is told, before the first move, what the player could only
learn by walking around: the text of *every* room. The published pipeline
gathered these by teleporting from room to room and recorded the same text for
several rooms when a teleport silently did not happen. Here each room is
gathered on a fresh load of the same variation with ScienceWorld's
``teleportAction`` simplification: load, ``teleport to ROOM``, read the room
with the free (time-less) look. A room is accepted only when the simulator
answers "You teleport to the ROOM." *and* the text it then shows names that
room in its first line; anything else raises. The start room is read at the
start itself (the episode's own first move, ``look around``, takes no time);
every other room one tick later (the teleport's), before anything the player
does.

Gathering takes one load per room (about 1-3 s a variation), so the result is
cached under ``WMGYM_HOME/sciworld/`` and later resets of the variation cost
one load. Gathering never touches the episode: the env loads the variation
afresh for play afterwards.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from wmgym.paths import atomic_write
from wmgym.envs.sciworld.engine import ScienceWorldJVM, cache_dir

_ROOM_RE = re.compile(r"^This (?:room|outside location) is called the ([^.\n]+)\.")
_DOOR_RE = re.compile(r"A door to the ([^(\n]+?) \(that is (open|closed)\)")
#: Commands that ScienceWorld lists among its templates but wmgym refuses (see SciWorldEnv.blocked_commands).
META_TEMPLATES = frozenset({"reset task"})
CONTEXT_VERSION = 1


def room_of(look: str) -> str | None:
    """The room a look text describes (its first line names it), or None."""
    match = _ROOM_RE.match(look.strip())
    return match.group(1).strip() if match else None


def doors_of(look: str) -> dict[str, bool]:
    """``{neighbouring room: door is open}`` from a room's look text."""
    return {m.group(1).strip(): m.group(2) == "open" for m in _DOOR_RE.finditer(look)}


def context_path(task: str, variation: int) -> Path:
    return cache_dir() / "contexts" / task / f"{variation}.json"


def gold_path(task: str, variation: int) -> Path:
    return cache_dir() / "gold" / task / f"{variation}.json"


def gather_rooms(jvm: ScienceWorldJVM, task: str, variation: int) -> dict[str, Any]:
    """Every room's text at the start of ``(task, variation)``, checked room by room (see module docstring)."""
    server = jvm.server
    jvm.load(task, variation, "teleportAction")
    first = server.step("look around")
    start_room = room_of(first)
    rooms = sorted(a[len("teleport to "):] for a in server.getValidActionObjectCombinations()
                   if a.startswith("teleport to "))
    if start_room is None or start_room not in rooms:
        raise RuntimeError(f"{task} variation {variation}: the start text names no known room "
                           f"(rooms {rooms}): {first[:200]!r}")
    texts = {start_room: first}
    for room in rooms:
        if room == start_room:
            continue
        jvm.load(task, variation, "teleportAction")
        reply = server.step(f"teleport to {room}").strip()
        text = server.freeActionLook()
        if reply != f"You teleport to the {room}." or room_of(text) != room:
            raise RuntimeError(f"{task} variation {variation}: teleporting to {room!r} answered {reply!r} and "
                               f"showed the room {room_of(text)!r}; refusing to record a wrong room")
        texts[room] = text
    return {"start_room": start_room, "rooms": {room: texts[room] for room in rooms}}


def episode_facts(jvm: ScienceWorldJVM) -> dict[str, Any]:
    """Task text, goal progress, inventory and action templates of the loaded episode (free calls, no tick)."""
    server = jvm.server
    templates = sorted(t for t in server.getPossibleActions() if t not in META_TEMPLATES)
    return {
        "task_description": str(server.getTaskDescription()).strip(),
        "goal_progress": str(server.getGoalProgressStr()).strip(),
        "inventory": str(server.freeActionInventory()).strip(),
        "templates": templates,
    }


def cached_context(task: str, variation: int) -> dict[str, Any] | None:
    path = context_path(task, variation)
    if not path.exists():
        return None
    data = json.loads(path.read_text())
    return data if data.get("version") == CONTEXT_VERSION else None


def store_context(task: str, variation: int, rooms: dict[str, Any], facts: dict[str, Any]) -> dict[str, Any]:
    data = {"version": CONTEXT_VERSION, "task": task, "variation": variation, **rooms, **facts}
    atomic_write(context_path(task, variation), json.dumps(data, indent=1))
    return data


def format_context(ctx: dict[str, Any], first_observation: str) -> str:
    """The ``init_context`` text: task, goal progress, templates, inventory, every room, first observation."""
    parts = [
        f"Task: {ctx['task_description']}",
        "",
        "Goal progress at the start:",
        ctx["goal_progress"],
        "",
        "Action templates (OBJ is an object or a room):",
        *ctx["templates"],
        "",
        "Inventory at the start:",
        ctx["inventory"],
        "",
        f"Rooms at the start (hidden from the player; the player starts in the {ctx['start_room']}):",
    ]
    for room, text in ctx["rooms"].items():
        parts += [f"[{room}]", text.strip(), ""]
    parts += ["First observation:", first_observation]
    return "\n".join(parts)


def cached_gold(task: str, variation: int) -> list[str] | None:
    path = gold_path(task, variation)
    return json.loads(path.read_text())["actions"] if path.exists() else None


def store_gold(task: str, variation: int, actions: list[str]) -> None:
    atomic_write(gold_path(task, variation), json.dumps({"task": task, "variation": variation, "actions": actions}))
