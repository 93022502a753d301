"""ALFWorld-v0 in Word2World's strings (``format="word2world"``).

Rules read from Word2World (``scripts/collect_init_context/collect_wm_instruct_alfworld.py`` and its
AgentGym ALFWorld server and client); our own code:

- First observation (what the agent sees, and the system prompt's user part): the game's reset text
  without its first paragraph (the welcome banner), the remaining paragraphs joined by one newline, then
  ``"\\nAVAILABLE ACTIONS: "`` and the admissible commands joined by ``","``.
- Later observations: the game's text, less a leading ``"You arrive at loc N. "``.
- State description: ``=== Objects on Receptacles ===`` lists every receptacle that holds something or is
  openable, sorted by name as text ("cabinet 10" before "cabinet 2"), its contents as ``a x, a y`` sorted
  by name; an openable one reads ``"X is closed, if opened, on the X, you see a y"`` (``"X is closed, if
  opened, in it, you see nothing."`` when empty; ``"is opened"`` for an open one), any other
  ``"On the X, you see a y"`` (no final period; ``"On the X, you see nothing."`` when empty). Then
  ``=== Toggle States ===``: ``"x is on"``/``"x is off"`` for each toggleable thing, sorted. Every line is
  prefixed ``" - "``, sections are separated by a blank line and an empty section is left out.

Names are the game's own (the ones its observations print). Word2World numbers things from the PDDL
ids of the official game files in the same words; on generated games ours are the only names there are.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from wmgym.envs.word2world import system_prompt, with_available_actions

_LOC_PREFIX = "You arrive at loc "


def entity(label: str) -> str:
    """Word2World's entity spelling: the words before a trailing number run together, lower case."""
    parts = label.strip().split()
    if not parts:
        return "object"
    if parts[-1].isdigit():
        return f"{''.join(parts[:-1]).lower() or 'object'} {parts[-1]}"
    return "".join(parts).lower()


def first_observation(feedback: str, admissible: Sequence[str]) -> str:
    """The reset text as AgentGym's ALFWorld client shows it (banner paragraph dropped, actions appended)."""
    text = "\n".join(feedback.split("\n\n")[1:])
    return with_available_actions(text, admissible, ",")


def step_observation(feedback: str) -> str:
    """A step's text as AgentGym's ALFWorld server returns it."""
    if feedback.startswith(_LOC_PREFIX):
        return feedback[feedback.find(". ") + 2:]
    return feedback


def describe_state(facts: Sequence[Any]) -> str:
    """The hidden state description of Word2World's ALFWorld system prompt, from the game's initial facts."""
    contents: dict[str, list[str]] = {}
    openable: set[str] = set()
    opened: set[str] = set()
    toggleable: set[str] = set()
    toggled: set[str] = set()
    for fact in facts:
        args = [entity(a.name) for a in fact.arguments]
        name = fact.name.lower()
        if name == "inreceptacle" and len(args) == 2:
            contents.setdefault(args[1], []).append(args[0])
        elif name == "openable" and len(args) == 1:
            openable.add(args[0])
        elif name == "opened" and len(args) == 1:
            opened.add(args[0])
        elif name == "toggleable" and len(args) == 1:
            toggleable.add(args[0])
        elif name == "istoggled" and len(args) == 1:
            toggled.add(args[0])
    receptacles = []
    for rec in sorted(set(contents) | openable | opened):
        items = sorted(contents.get(rec, []))
        seen = "a " + ", a ".join(items) if items else ""
        if rec in opened or rec in openable:
            state = "opened" if rec in opened else "closed, if opened"
            receptacles.append(f"{rec} is {state}, on the {rec}, you see {seen}" if seen
                               else f"{rec} is {state}, in it, you see nothing.")
        else:
            receptacles.append(f"On the {rec}, you see {seen}" if seen else f"On the {rec}, you see nothing.")
    toggles = sorted(f"{thing} is {'on' if thing in toggled else 'off'}" for thing in toggleable)
    lines: list[str] = []
    for title, section in (("=== Objects on Receptacles ===", receptacles), ("=== Toggle States ===", toggles)):
        if section:
            lines += ([""] if lines else []) + [title] + [f" - {line}" for line in section]
    return "\n".join(lines)


def init_context(facts: Sequence[Any], first: str) -> str:
    """Word2World's ALFWorld system prompt for a game whose first observation (as shown) is ``first``."""
    return system_prompt(describe_state(facts), first)
