"""An observation-only scripted agent for ALFWorld-v0.

It reads the task sentence ("put a clean X in Y", "heat some X and put it in
Y", "find two X and put them in Y", "look at X under the desklamp", ...) and
the receptacles of the first observation, then searches: it goes to each
receptacle in turn (opening closed ones), reads what it sees there, takes a
matching object, cleans / heats / cools it at a sinkbasin / microwave /
fridge, goes to the target receptacle and moves the object there (twice for
"two"); for "look at" it takes the object and uses the lamp it has seen.
Everything it knows comes from the observations.
"""

from __future__ import annotations

import re
from typing import Any

from wmgym.agents.base import ScriptedAgent

_TASKS = [
    (r"look at (?:a |an |some |the )?(\w+) under the (\w+)", "look"),
    (r"examine the (\w+) with the (\w+)", "look"),
    (r"(clean|heat|cool) some (\w+) and put it (?:in|on) (?:the )?(\w+)", "modify"),
    (r"put a (clean|hot|cool) (\w+) (?:in|on) (?:the )?(\w+)", "modify"),
    (r"(?:find two|put two) (\w+) and put them (?:in|on) (?:the )?(\w+)", "two"),
    (r"put two (\w+) (?:in|on) (?:the )?(\w+)", "two"),
    (r"put (?:a|an|some) (\w+) (?:in|on) (?:the )?(\w+)", "place"),
]
#: Receptacle kinds that start closed (opening them costs a step).
_CLOSED_KINDS = {"cabinet", "drawer", "fridge", "microwave", "safe", "box"}
_FOOD = {"apple", "bread", "egg", "lettuce", "potato", "tomato", "winebottle", "mug", "cup", "pan", "pot", "plate"}
_TOOL = {"clean": ("clean", "sinkbasin"), "heat": ("heat", "microwave"), "cool": ("cool", "fridge"),
         "hot": ("heat", "microwave")}


def parse_task(task: str) -> dict[str, Any] | None:
    """``{"kind", "obj", "target", "modify", "count"}`` for an ALFWorld task sentence, else ``None``."""
    text = task.lower().strip()
    for pattern, kind in _TASKS:
        m = re.search(pattern, text)
        if not m:
            continue
        g = m.groups()
        if kind == "look":
            return {"kind": kind, "obj": g[0], "target": g[1], "modify": None, "count": 1}
        if kind == "modify":
            return {"kind": "place", "obj": g[1], "target": g[2], "modify": _TOOL[g[0]][0], "count": 1}
        return {"kind": "place", "obj": g[0], "target": g[1], "modify": None, "count": 2 if kind == "two" else 1}
    return None


def receptacles(observation: str) -> list[str]:
    """Receptacles named in "Looking quickly around you, you see a X 1, a Y 2, and a Z 1."."""
    m = re.search(r"you see (.*?)\.(?:\s|$)", observation.lower())
    return re.findall(r"\b([a-z]+ \d+)\b", m.group(1)) if m else []


def things_seen(observation: str) -> list[str]:
    """Objects listed after "you see" / "In it, you see" in an observation ("a cd 1, and a pen 1")."""
    out = []
    for m in re.finditer(r"you see (.*?)(?:\.|$)", observation.lower()):
        out += re.findall(r"\b([a-z]+ \d+)\b", m.group(1))
    return out


class ALFWorldAgent(ScriptedAgent):
    """Scripted ALFWorld agent (see module docstring)."""

    name = "scripted"

    def start(self, observation: str, info: dict[str, Any]) -> None:
        self.goal = parse_task(info.get("task", "") or observation)
        recs = receptacles(observation.split("Your task is to:")[0])
        self.recs = recs
        target = self.goal["target"] if self.goal else None
        obj = self.goal["obj"] if self.goal else ""
        chosen = next((r for r in recs if r.split()[0] == target), None)

        def cost(rec: str) -> tuple[int, int]:
            kind = rec.split()[0]
            if rec == chosen:
                return (3, 0)  # where objects go: searched last, nothing is taken from it
            if kind == "fridge" and obj in _FOOD:
                return (0, 0)
            return (2 if kind in _CLOSED_KINDS else 1, 0)  # open surfaces cost one step, containers two

        self.todo = sorted(recs, key=cost)
        self.at: str | None = None
        self.closed: set[str] = set()
        self.seen: dict[str, list[str]] = {}
        self.holding: str | None = None
        self.modified = False
        self.placed: list[str] = []
        self.lamp: str | None = None
        self.queue: list[str] = []

    def update(self, action: str | None, observation: str, info: dict[str, Any]) -> None:
        low = observation.lower()
        m = re.match(r"you arrive at ([a-z]+ \d+)", low)
        if m:
            self.at = m.group(1)
        if self.at and re.search(rf"the {re.escape(self.at)} is closed", low):
            self.closed.add(self.at)
        if action and action.startswith("open ") and "you open" in low:
            self.closed.discard(action[5:])
        items = things_seen(low)
        if self.at and (m or (action or "").startswith("open ")):
            self.seen[self.at] = items
        for item in items:
            if item.split()[0] in ("desklamp", "floorlamp"):
                self.lamp = item
        if action and action.startswith("take ") and "you pick up" in low:
            self.holding = action[5:].split(" from ")[0]
            self.modified = False
            if self.at in self.seen and self.holding in self.seen[self.at]:
                self.seen[self.at].remove(self.holding)
        elif action and re.match(r"(clean|heat|cool) ", action) and re.search(r"you (clean|heat|cool)", low):
            self.modified = True
        elif action and action.startswith("move ") and "you move" in low:
            self.placed.append(self.holding or "")
            self.holding = None
        if self.queue and action == self.queue[0]:
            self.queue.pop(0)

    # -------------------------------------------------------------- acting
    def _first(self, kind: str) -> str | None:
        return next((r for r in self.recs if r.split()[0] == kind), None)

    def _goto(self, rec: str) -> str:
        if self.at != rec:
            return f"go to {rec}"
        if rec in self.closed:
            return f"open {rec}"
        return ""

    def decide(self, observation: str, info: dict[str, Any]) -> str:
        g = self.goal
        if g is None:
            return self.random_action(observation, info)
        if self.holding is None:
            if len(self.placed) >= g["count"] and g["kind"] == "place":
                return self.random_action(observation, info)
            here = self.seen.get(self.at or "", [])
            at_target = self.at is not None and self.at == self._first(g["target"])
            match = next((o for o in here if o.split()[0] == g["obj"] and o not in self.placed), None)
            if match and not (at_target and g["kind"] == "place"):
                return f"take {match} from {self.at}"
            if self.at and self.at in self.closed:
                return f"open {self.at}"
            while self.todo and self.todo[0] == self.at:
                self.todo.pop(0)
            if self.todo:
                return f"go to {self.todo.pop(0)}"
            return self.random_action(observation, info)
        if g["kind"] == "look":
            lamp = self.lamp
            if lamp is None:
                while self.todo and self.todo[0] == self.at:
                    self.todo.pop(0)
                return f"go to {self.todo.pop(0)}" if self.todo else self.random_action(observation, info)
            lamp_at = next((r for r, items in self.seen.items() if lamp in items), None)
            if lamp_at and self.at != lamp_at:
                return f"go to {lamp_at}"
            return f"use {lamp}"
        if g["modify"] and not self.modified:
            tool = self._first(_TOOL[g["modify"]][1])
            if tool is None:
                return self.random_action(observation, info)
            return self._goto(tool) or f"{g['modify']} {self.holding} with {tool}"
        target = self._first(g["target"])
        if target is None:
            return self.random_action(observation, info)
        return self._goto(target) or f"move {self.holding} to {target}"
