"""A simple observation-only scripted agent for SciWorld-v0.

It solves the "find" family (find a living thing, a non-living thing, a
plant, an animal: focus on it, then move it to the named box in the named
room): it explores the house room by room through the doors the text names
(opening closed ones, ``look around`` on arrival), picks the first thing of
the asked kind it reads about, focuses on it, picks it up, walks back to the
box's room and moves it into the box. Every other task gets a look around and
random commands, so its success there is near zero: ScienceWorld's other
tasks need real procedural knowledge (the ReAct agent is the way to measure
those).
"""

from __future__ import annotations

import re
from collections import deque
from typing import Any

from wmgym.agents.base import ScriptedAgent

_ANIMALS = ("ant", "bee", "beaver", "blue jay", "brown bear", "butterfly", "chameleon", "chipmunk", "crocodile",
            "dove", "dragonfly", "elephant", "frog", "giant tortoise", "moth", "mouse", "parrot", "rabbit", "toad",
            "turtle", "wolf", "hedgehog", "owl", "spider", "snail", "worm", "fish")
_FURNITURE = ("agent", "air", "substance", "door", "table", "chair", "couch", "counter", "cupboard", "box", "sofa",
              "bed", "desk", "shelf", "closet", "freezer", "fridge", "oven", "stove", "sink", "toilet", "bathtub",
              "furnace", "fountain", "fire pit", "ground", "bee hive", "drawer", "picture", "painting of", "wall",
              "flower pot", "workbench", "table")


def parse_find_task(task: str) -> dict[str, str] | None:
    """``{"kind", "box", "room"}`` for a find task, else ``None``."""
    low = task.lower()
    kind = re.search(r"find an? ?\(?n?\)? ?(living thing|non-living thing|plant|animal)", low)
    dest = re.search(r"move it to the ([a-z ]+? box) in the ([a-z ]+?)\.", low)
    if not kind or not dest:
        return None
    return {"kind": kind.group(1), "box": dest.group(1), "room": dest.group(2)}


def room_of(observation: str) -> str | None:
    m = re.search(r"(?:this room is called the|this outside location is called the|you move to the) ([a-z ]+?)[.:]",
                  observation.lower())
    return m.group(1) if m else None


def doors(observation: str) -> dict[str, bool]:
    """Rooms reachable by the doors a room text names, and whether each door is open."""
    return {m.group(1): m.group(2) == "open"
            for m in re.finditer(r"a door to the ([a-z ]+?) \(that is (open|closed)\)", observation.lower())}


def candidates(observation: str, kind: str) -> list[tuple[str, str]]:
    """``(focus name, thing to carry)`` of the things of ``kind`` a room text lists."""
    out_animals, out_plants, out_other = [], [], []
    for raw in observation.lower().split("\n"):
        line = raw.strip().rstrip(".")
        if not raw.startswith("\t") or not line:
            continue
        item = re.sub(r"^(?:a|an|the) ", "", line)
        pot = re.match(r"(flower pot \d+) \(containing an? ([a-z ]+?(?:plant|tree))\b", item)
        if pot:
            out_plants.append((pot.group(2).split(" in the ")[0], pot.group(1)))
            continue
        name = item.split(" (")[0].split(". ")[0].strip()
        if any(f in name for f in _FURNITURE) or "called" in name:
            continue
        if any(re.search(rf"\b{a}\b", name) for a in _ANIMALS):
            out_animals.append((name, name))
        elif "(" not in item and len(name.split()) <= 3:
            out_other.append((name, name))
    return {"animal": out_animals, "plant": out_plants, "living thing": out_animals + out_plants,
            "non-living thing": out_other}[kind]


class SciWorldAgent(ScriptedAgent):
    """Scripted SciWorld agent (see module docstring)."""

    name = "scripted"

    def start(self, observation: str, info: dict[str, Any]) -> None:
        self.goal = parse_find_task(info.get("task", "") or observation)
        self.room = room_of(observation)
        self.graph: dict[str, dict[str, bool]] = {}
        self.visited: set[str] = set()
        self.target: tuple[str, str] | None = None
        self.focused = self.holding = False
        self.looked = False
        self._read(observation)

    def _read(self, observation: str) -> None:
        if self.room is None:
            return
        found = doors(observation)
        if found:
            self.graph.setdefault(self.room, {}).update(found)
            for other in found:
                self.graph.setdefault(other, {}).setdefault(self.room, found[other])
        if "you see" in observation.lower():
            self.visited.add(self.room)
            if self.goal and self.target is None:
                things = candidates(observation, self.goal["kind"])
                self.target = things[0] if things else None

    def update(self, action: str | None, observation: str, info: dict[str, Any]) -> None:
        low = observation.lower()
        new_room = room_of(observation)
        if new_room:
            self.room = new_room
            self.looked = "you see" in low or new_room in self.visited
        if action and action.startswith("open door to ") and ("now open" in low or "already open" in low):
            self.graph.setdefault(self.room or "", {})[action[len("open door to "):]] = True
        self._read(observation)
        if action and action.startswith("focus on") and "you focus" in low:
            self.focused = True
        if action and action.startswith("pick up") and "inventory" in low:
            self.holding = True

    def _path(self, goal) -> list[str] | None:
        if self.room is None:
            return None
        queue, seen = deque([(self.room, [])]), {self.room}
        while queue:
            room, path = queue.popleft()
            if goal(room) and path:
                return path
            for nxt in sorted(self.graph.get(room, {})):
                if nxt not in seen:
                    seen.add(nxt)
                    queue.append((nxt, path + [nxt]))
        return None

    def _walk(self, path: list[str]) -> str:
        nxt = path[0]
        if not self.graph.get(self.room or "", {}).get(nxt, False):
            return f"open door to {nxt}"
        return f"go to {nxt}"

    def decide(self, observation: str, info: dict[str, Any]) -> str:
        if not self.looked:
            self.looked = True
            return "look around"
        g = self.goal
        if g is None:
            return self.random_action(observation, info)
        if self.target is None:
            path = self._path(lambda r: r not in self.visited)
            return self._walk(path) if path else self.random_action(observation, info)
        name, carry = self.target
        if not self.focused:
            return f"focus on {name}"
        if not self.holding:
            return f"pick up {carry}"
        if self.room != g["room"]:
            path = self._path(lambda r: r == g["room"])
            if path:
                return self._walk(path)
            path = self._path(lambda r: r not in self.visited)
            return self._walk(path) if path else self.random_action(observation, info)
        return f"move {carry} to {g['box']}"
