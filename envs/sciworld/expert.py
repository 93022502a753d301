"""SciWorld's expert: ScienceWorld's gold action sequence, followed reactively.

ScienceWorld generates one gold sequence per variation, for play from the
start. The expert keeps a pointer into it; a step advances the pointer only
when the action taken *is* the next gold action and the simulator executed it
(not refused by the parser, not left waiting on an ambiguity, unless the gold
sequence itself answers that ambiguity with a number next). A gold action
refused twice is skipped, so the expert never loops. When the agent deviates:

- if the agent already stands where a stretch of pure navigation in the
  sequence (``open door to``, ``go to``, ``look around``) would lead, that
  stretch is skipped;
- otherwise it walks back to the room the gold sequence expects the agent to be in
  (where the last executed ``go to`` of the sequence led), along the shortest
  door path of the map read from the rooms' texts, opening closed doors on the
  way (``open door to X``, then ``go to X``), and then resumes the sequence;
- an ambiguity prompt the agent caused is cancelled by the next gold action
  (the simulator consumes any non-number as "cancel"), which is then re-issued;
- side effects are not undone: a moved object that the sequence later picks up
  is still picked up if visible; a wrong ``focus on`` fails the task, as it
  does for any player.

When the sequence is exhausted the expert has nothing to say (``None``).

ScienceWorld's gold generator simulates the task, and in tasks that rely on
bees pollinating (Mendelian genetics, growing fruit) its run is random: now and
then it concludes wrongly (it answered "green box" for a dominant trait in one
variation). :func:`winning_gold_path` therefore plays each generated sequence
on the fresh load it leaves behind and keeps the first one that wins.
"""

from __future__ import annotations

import collections

import logging

from wmgym.envs.sciworld.context import doors_of, room_of
from wmgym.envs.sciworld.engine import AMBIGUOUS_PREFIX, PARSER_REJECTIONS, ScienceWorldJVM

logger = logging.getLogger(__name__)

#: Gold actions that only move the agent (safe to skip when the agent already stands where they lead).
_NAVIGATION = ("go to ", "open door to ", "look around")


def winning_gold_path(jvm: ScienceWorldJVM, task: str, variation: int, tries: int = 3) -> list[str]:
    """ScienceWorld's gold sequence for ``(task, variation)``, generated until one wins when played from the start."""
    gold: list[str] = []
    for attempt in range(1, tries + 1):
        jvm.load(task, variation, gold_path=True)  # generates, then leaves a fresh load of the variation
        server = jvm.server
        gold = [str(a) for a in server.getGoldActionSequence()]
        if not gold or gold[0].startswith("ERROR"):
            raise RuntimeError(f"ScienceWorld made no gold path for {task} variation {variation}: {gold}")
        server.step("look around")
        for action in gold:
            server.step(action)
            if server.getCompleted() or server.getScore() < 0:
                break
        if server.getCompleted() and server.getScore() >= 1.0:
            return gold
        logger.warning("gold path %d/%d of %s variation %s does not win (score %s); generating again", attempt,
                       tries, task, variation, round(100 * server.getScore()))
    return gold


def door_graph(rooms: dict[str, str]) -> dict[str, set[str]]:
    """``{room: rooms one door away}`` from the rooms' initial texts."""
    graph: dict[str, set[str]] = {room: set() for room in rooms}
    for room, text in rooms.items():
        for other in doors_of(text):
            graph.setdefault(room, set()).add(other)
            graph.setdefault(other, set()).add(room)
    return graph


def shortest_path(graph: dict[str, set[str]], start: str, goal: str) -> list[str] | None:
    """Rooms from ``start`` to ``goal`` inclusive (breadth first, ties broken by name), or None."""
    previous: dict[str, str | None] = {start: None}
    queue = collections.deque([start])
    while queue:
        room = queue.popleft()
        if room == goal:
            path = [room]
            while previous[path[-1]] is not None:
                path.append(previous[path[-1]])
            return path[::-1]
        for nxt in sorted(graph.get(room, ())):
            if nxt not in previous:
                previous[nxt] = room
                queue.append(nxt)
    return None


class GoldExpert:
    """Follows a gold sequence, steering back to it after deviations (see module docstring)."""

    def __init__(self, gold: list[str], start_room: str, rooms: dict[str, str]):
        self.gold = list(gold)
        self.position = 0
        self.failures = 0  # refusals of the current gold action
        self.graph = door_graph(rooms)
        # expected[i]: the room the agent should be in before gold[i] (after the last earlier "go to ROOM").
        self.expected: list[str] = []
        room = start_room
        for action in self.gold:
            self.expected.append(room)
            target = action[len("go to "):] if action.startswith("go to ") else None
            if target in self.graph:
                room = target
        self.expected.append(room)

    def observe(self, action: str, observation: str) -> None:
        """Record a step: the action taken and the simulator's answer."""
        if self.position >= len(self.gold) or action.strip() != self.gold[self.position]:
            return
        ambiguous = observation.startswith(AMBIGUOUS_PREFIX)
        follow_up = self.position + 1 < len(self.gold) and self.gold[self.position + 1].isdigit()
        if (not ambiguous and not observation.startswith(PARSER_REJECTIONS)) or (ambiguous and follow_up):
            self.position, self.failures = self.position + 1, 0  # executed, or the gold's own ambiguity
            return
        self.failures += 1
        if self.failures >= 2:  # refused twice where the gold expected it to work: move on rather than loop
            self.position, self.failures = self.position + 1, 0

    def next_action(self, look: str, last_observation: str) -> str | None:
        """The next command, given the free look of the agent's room and the last observation."""
        if self.position >= len(self.gold):
            return None
        ambiguous = last_observation.startswith(AMBIGUOUS_PREFIX)
        while not ambiguous and self.gold[self.position].isdigit():  # the gold's answer to a prompt not shown
            self.position += 1
            if self.position >= len(self.gold):
                return None
        action = self.gold[self.position]
        if ambiguous:
            return action  # the gold's own answer, or (after the agent's prompt) consumed as "cancel" and re-issued
        here, want = room_of(look), self.expected[self.position]
        if here is None or here == want:
            return action
        # Already where a stretch of pure navigation would lead (the agent walked ahead): skip that stretch.
        j = self.position
        while j < len(self.gold) and self.gold[j].startswith(_NAVIGATION) and self.expected[j] != here:
            j += 1
        if j < len(self.gold) and self.expected[j] == here:
            self.position = j
            return self.gold[j]
        path = shortest_path(self.graph, here, want)
        if path is None or len(path) < 2:
            return action
        nxt = path[1]
        return f"go to {nxt}" if doors_of(look).get(nxt, True) else f"open door to {nxt}"
