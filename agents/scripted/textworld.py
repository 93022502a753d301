"""An observation-only scripted agent for TextWorld-v0.

Two kinds of games, told apart by the task text:

- **Quests** ("First, venture south. Then, retrieve the X from the Y. ..."):
  the task text is turned into commands by patterns that follow TextWorld's
  instruction grammar (``house_instruction.twg``: go/take/open/unlock/insert/
  put/drop/eat with their synonyms and compound forms), then played in order.
- **Cooking** ("Check the cookbook in the kitchen ..."): find the kitchen by
  exploring (a map built from room headers and the exits the text mentions),
  read the cookbook, gather the ingredients (opening containers, exploring
  further rooms), take the knife, cut and cook as directed unless the
  inventory shows it done, ``prepare meal``, ``eat meal``.

When its plan is used up without a win it plays random commands
(:func:`~wmgym.agents.base.candidate_commands`). It reads only the task
and the observations.
"""

from __future__ import annotations

import re
from collections import deque
from typing import Any

from wmgym.agents.base import ScriptedAgent

DIRS = ("north", "south", "east", "west")
OPPOSITE = {"north": "south", "south": "north", "east": "west", "west": "east"}
_N = r"([a-z0-9][a-z0-9' -]*?)"  # a noun phrase, lazily
_END = r"(?=[.,!;]| and\b| from\b| in\b| into\b| inside\b| within\b| on\b| with\b| that's\b| is\b|$)"
_MAKE = r"(?:make sure|assure|make it so|doublecheck|look and see|make absolutely sure|check|ensure)"
_TAKE = r"(?:take|retrieve|recover|pick up|pick-up|lift)"
_KEY = "?"  # placeholder for a key the text does not name, resolved from what the agent has seen

#: (pattern, command templates); groups fill {0}, {1}, ... Compound forms come first.
_RULES: list[tuple[str, tuple[str, ...]]] = [
    (rf"\b{_TAKE} the {_N} and use it to unlock the {_N}{_END}", ("take {0}", "unlock {1} with {0}")),
    (rf"\bopen the locked {_N} using the {_N} and take the {_N}{_END}",
     ("unlock {0} with {1}", "open {0}", "take {2}")),
    (rf"\bunlock the {_N} using the {_N},? and take the {_N}{_END}", ("unlock {0} with {1}", "open {0}", "take {2}")),
    (rf"\bunlock the {_N} and take the {_N}{_END}", (f"unlock {{0}} with {_KEY}", "open {0}", "take {1}")),
    (rf"\btake the {_N} from within the locked {_N}{_END}", (f"unlock {{1}} with {_KEY}", "open {1}", "take {0}")),
    (rf"\b(?:open the locked|unlock and open the|open the) {_N} using the {_N}{_END}", ("unlock {0} with {1}", "open {0}")),
    (rf"\bunlock and open the {_N}{_END}", (f"unlock {{0}} with {_KEY}", "open {0}")),
    (rf"\bunlock the {_N}, with the {_N}{_END}", ("unlock {0} with {1}",)),
    (rf"\bfrom in the closed {_N}, take the {_N}{_END}", ("open {0}", "take {1}")),
    (rf"\bopen the {_N} and take the {_N}{_END}", ("open {0}", "take {1}")),
    (rf"\bopen the {_N} and place the {_N} in it", ("open {0}", "insert {1} into {0}")),
    (rf"\bput the {_N} in the closed {_N}{_END}", ("open {1}", "insert {0} into {1}")),
    (rf"\bplace the {_N} in the {_N} and close it", ("insert {0} into {1}", "close {1}")),
    (rf"\bclose (?:the )?{_N} after placing the {_N} in it", ("insert {1} into {0}", "close {0}")),
    (rf"\bclose the {_N} and lock it with the {_N}{_END}", ("close {0}", "lock {0} with {1}")),
    (rf"\bclose the {_N} and lock it", ("close {0}", f"lock {{0}} with {_KEY}")),
    (r"\b(?:go|head|venture|travel|move|take a trip)(?: to the)?(?: through the)? (north|south|east|west)\b",
     ("go {0}",)),
    (rf"\binsert the {_N} into the {_N}'s lock to unlock it", ("unlock {1} with {0}",)),
    (rf"\b(?:insert|put|place|deposit) the {_N} into the {_N} to lock it", ("lock {1} with {0}",)),
    (rf"\b(?:unlock the {_N}|the {_N} is unlocked) with the {_N}{_END}", ("unlock {0} with {1}",)),
    (rf"\b(?:lock the {_N}|the {_N} is locked) with the {_N}{_END}", ("lock {0} with {1}",)),
    (rf"\b(?:unlock the {_N}|the {_N} is unlocked)(?! with){_END}", (f"unlock {{0}} with {_KEY}",)),
    (rf"\b(?:lock the {_N}|{_MAKE}(?: that)? the {_N} is locked)(?! with){_END}", (f"lock {{0}} with {_KEY}",)),
    (rf"\b(?:open the {_N}|the {_N} is (?:opened|open|wide open|ajar)){_END}", ("open {0}",)),
    (rf"\b(?:close the {_N}|the {_N} is (?:closed|shut)){_END}", ("close {0}",)),
    (rf"\b(?:place|drop|ditch|throw|toss|deposit) the {_N} on the floor\b", ("drop {0}",)),
    (rf"\b(?:insert|put|place|deposit) the {_N} (?:into|inside) the {_N}{_END}", ("insert {0} into {1}",)),
    (rf"\b(?:put|place|sit|rest|set) the {_N} (?:on|upon) the {_N}{_END}", ("put {0} on {1}",)),
    (rf"\b{_TAKE} the {_N}{_END}", ("take {0}",)),
    (rf"\beat the {_N}{_END}", ("eat {0}",)),
]
_CONTAINER_RE = r"\b(fridge|toolbox|chest|box|case|cupboard|drawer|cabinet|trunk|safe|locker|suitcase|crate)\b"
#: Phrases of the game's refusals (only trusted outside room descriptions, whose flavour text says "can't").
_FAILURES = ("can't", "cannot", "not see", "nothing happens", "that's not", "you need", "you have to",
             "only understood", "is closed", "not open")
_COMPILED = [(re.compile(p), t) for p, t in _RULES]


def _clean_name(name: str) -> str:
    name = re.split(r" (?:in|within|inside) the ", name)[0]
    return name.split(" that the ")[-1].strip()


def quest_plan(task: str) -> list[str]:
    """Commands for a quest, in the order the task text gives them (duplicates in a row dropped)."""
    text = " ".join(task.lower().split())
    found: list[tuple[int, int, int, list[str]]] = []
    for order, (pattern, templates) in enumerate(_COMPILED):
        for m in pattern.finditer(text):
            groups = [_clean_name(g) for g in m.groups() if g is not None]
            try:
                commands = [t.format(*groups) for t in templates]
            except IndexError:
                continue
            found.append((m.start(), order, m.end(), commands))
    found.sort(key=lambda f: (f[0], f[1]))
    plan: list[str] = []
    covered = -1
    for start, _order, end, commands in found:
        if start < covered:  # inside a match already used (a compound form won)
            continue
        covered = end
        for c in commands:
            if not plan or plan[-1] != c:
                plan.append(c)
    return plan


def room_name(observation: str) -> str | None:
    m = re.search(r"-= (.+?) =-", observation)
    return m.group(1).strip().lower() if m else None


def exits(observation: str) -> list[str]:
    """Directions the room text mentions (after its header)."""
    text = observation.lower()
    if "-= " in text:
        text = text[text.index("-= "):]
    return [d for d in DIRS if re.search(rf"\b{d}\b", text)]


def closed_doors(observation: str) -> list[str]:
    return sorted(set(re.findall(r"\bclosed ([a-z][a-z -]*?door)\b", observation.lower())))


class TextWorldAgent(ScriptedAgent):
    """Scripted TextWorld agent (see module docstring)."""

    name = "scripted"

    def start(self, observation: str, info: dict[str, Any]) -> None:
        self.task = info.get("task", "") or observation
        self.cooking = "cookbook" in self.task.lower()
        self.plan: deque[str] = deque() if self.cooking else deque(quest_plan(self.task))
        self.keys: list[str] = []
        self.room = room_name(observation)
        self.rooms: dict[str, dict[str, str | None]] = {}
        self.room_text: dict[str, str] = {}
        self.recipe: list[str] | None = None
        self.directions: list[str] = []
        self.inventory_text = ""
        self.failed: set[str] = set()
        self.done_cmds: set[str] = set()
        self._see(observation)

    # ------------------------------------------------------------ perception
    def _see(self, observation: str) -> None:
        low = observation.lower()
        for adj, key in re.findall(r"\b(?:an?|the|your) ((?:[a-z]+ )?)(key|latchkey|passkey|keycard)\b", low):
            name = adj + key if adj.strip() not in ("a", "an", "the", "your", "locked", "unlocked") else key
            if name not in self.keys:
                self.keys.append(name)
        name = room_name(observation)
        if name:
            self.room = name
            self.room_text[name] = low
            known = self.rooms.setdefault(name, {})
            for d in exits(observation):
                known.setdefault(d, None)

    def update(self, action: str | None, observation: str, info: dict[str, Any]) -> None:
        low = observation.lower()
        prev = self.room
        self._see(observation)
        if action is None:
            return
        if action.startswith("go ") and prev and self.room and self.room != prev:
            d = action[3:]
            self.rooms.setdefault(prev, {})[d] = self.room
            self.rooms.setdefault(self.room, {}).setdefault(OPPOSITE.get(d, d), prev)
        elif action.startswith("go ") and prev and ("can't go" in low or "closed" in low):
            self.rooms.setdefault(prev, {})[action[3:]] = "#blocked"
        if self.room and action.startswith("open ") and room_name(observation) is None:  # revealed contents
            self.room_text[self.room] = self.room_text.get(self.room, "") + "\n" + low
        if action == "examine cookbook" and "ingredients" in low:
            self._read_recipe(low)
        if action == "inventory":
            self.inventory_text = low
        if self.plan and action == self.plan[0]:
            self.plan.popleft()
        if action.startswith("go "):
            moved = self.room != prev
            (self.done_cmds if moved else self.failed).add(action)
        elif room_name(observation) is None and any(s in low for s in _FAILURES):
            self.failed.add(action)
        else:
            self.done_cmds.add(action)

    def _read_recipe(self, text: str) -> None:
        ing = re.search(r"ingredients:(.*?)directions:", text, re.S)
        dirs = re.search(r"directions:(.*)", text, re.S)
        self.recipe = [s.strip() for s in ing.group(1).split("\n") if s.strip()] if ing else []
        self.directions = [s.strip() for s in dirs.group(1).split("\n") if s.strip()] if dirs else []

    # -------------------------------------------------------------- acting
    def decide(self, observation: str, info: dict[str, Any]) -> str:
        if not self.cooking:
            while self.plan:
                cmd = self.plan[0]
                if _KEY in cmd:
                    if not self.keys and "inventory" not in self.done_cmds | self.failed:
                        return "inventory"  # a key the task does not name: look at what we carry
                    if not self.keys:
                        self.plan.popleft()
                        continue
                    cmd = self.plan[0] = cmd.replace(_KEY, self.keys[0])
                return cmd
            return self.random_action(observation, info)
        return self._cook(observation, info) or self.random_action(observation, info)

    def _carrying(self, item: str) -> bool:
        return item in self.inventory_text

    def _cook(self, observation: str, info: dict[str, Any]) -> str | None:
        here = self.room_text.get(self.room or "", "")
        if self.recipe is None:
            if self.room != "kitchen":
                return self._go_towards("kitchen") or self._explore()
            return "examine cookbook" if "examine cookbook" not in self.failed else None
        if "inventory" not in self.done_cmds:
            return "inventory"
        missing = [i for i in self.recipe if not self._carrying(i)]
        for item in missing:  # take what is in sight
            cmd = f"take {item}"
            if item in observation.lower() + here and cmd not in self.failed and cmd not in self.done_cmds:
                return cmd
        for cont in re.findall(_CONTAINER_RE, here):  # ingredients hide in closed containers
            if f"open {cont}" not in self.done_cmds | self.failed and not re.search(rf"\bopen(?:ed)? {cont}", here):
                return f"open {cont}"
        if any(f"take {i}" in self.done_cmds and not self._carrying(i) for i in self.recipe):
            self.done_cmds.discard("inventory")
            return "inventory"
        if [i for i in missing if f"take {i}" not in self.done_cmds]:
            step = self._explore()
            if step is not None:
                return step
        needs_knife = any(d.split()[0] in ("slice", "chop", "dice") for d in self.directions)
        if needs_knife and "take knife" not in self.done_cmds | self.failed and not self._carrying("knife"):
            if self.room != "kitchen":
                return self._go_towards("kitchen")
            return "take knife"
        for direction in self.directions:
            cmd = self._direction_command(direction)
            if cmd is None or cmd in self.done_cmds or cmd in self.failed:
                continue
            if cmd.endswith("with bbq") and "bbq" not in here:
                return self._go_towards_item("bbq") or self._explore()
            if (cmd.endswith("with stove") or cmd.endswith("with oven") or cmd.startswith("prepare")) \
                    and self.room != "kitchen":
                return self._go_towards("kitchen")
            return cmd
        return "eat meal" if "eat meal" not in self.done_cmds else None

    def _direction_command(self, direction: str) -> str | None:
        words = direction.split()
        verb, item = words[0], " ".join(words[2:]) if len(words) > 2 and words[1] == "the" else ""
        state = {"slice": "sliced", "chop": "chopped", "dice": "diced",
                 "fry": "fried", "roast": "roasted", "grill": "grilled"}
        if verb in state and re.search(rf"\b{state[verb]}\b[a-z ]*\b{re.escape(item)}", self.inventory_text):
            return None  # already done (the game would burn it or refuse)
        if verb in ("slice", "chop", "dice"):
            return f"{verb} {item} with knife"
        tool = {"fry": "stove", "roast": "oven", "grill": "bbq"}.get(verb)
        if tool:
            return f"cook {item} with {tool}"
        if direction.startswith("prepare meal"):
            return "prepare meal"
        return None

    # ---------------------------------------------------------- navigation
    def _path_to(self, goal) -> list[str] | None:
        """Shortest known path (directions) to a room for which ``goal(room)`` holds."""
        if self.room is None:
            return None
        queue, seen = deque([(self.room, [])]), {self.room}
        while queue:
            room, path = queue.popleft()
            if goal(room):
                return path
            for d, nxt in sorted(self.rooms.get(room, {}).items()):
                if nxt and nxt != "#blocked" and nxt not in seen:
                    seen.add(nxt)
                    queue.append((nxt, path + [d]))
        return None

    def _go(self, path: list[str] | None) -> str | None:
        if not path:
            return None
        here = self.room_text.get(self.room or "", "")
        for door in closed_doors(here):
            cmd = f"open {door}"
            if cmd not in self.done_cmds and cmd not in self.failed:
                return cmd
        return f"go {path[0]}"

    def _go_towards(self, room: str) -> str | None:
        return self._go(self._path_to(lambda r: r == room))

    def _go_towards_item(self, item: str) -> str | None:
        return self._go(self._path_to(lambda r: item in self.room_text.get(r, "")))

    def _explore(self) -> str | None:
        """Go to the nearest exit not yet taken."""
        if self.room is None:
            return None
        queue, seen = deque([(self.room, [])]), {self.room}
        while queue:
            room, path = queue.popleft()
            for d, nxt in sorted(self.rooms.get(room, {}).items()):
                if nxt is None:
                    return self._go(path + [d])
            for d, nxt in sorted(self.rooms.get(room, {}).items()):
                if nxt and nxt != "#blocked" and nxt not in seen:
                    seen.add(nxt)
                    queue.append((nxt, path + [d]))
        return None
