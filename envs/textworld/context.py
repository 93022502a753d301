"""What a TextWorld game would show of its rooms and things at the start, and how it scores: the twin's context.

A TextWorld game's text is generated with the game: every room and every thing
has a description (``game.json``'s ``infos[id].desc``, compiled into the
Inform 7 source) that mixes fixed flavour prose ("You smell a hideous smell,
and follow it to a shelf.") with Inform conditionals on the state ("[if c_0 is
open]an opened[otherwise]a closed[end if] fridge"). The player sees a room's
text on entering it and a thing's text on examining it. Without that prose in
its initial state, a world model can only guess it, so the twin's context
(``context_version`` 2) carries every room and every thing as the game would
show it at the start, and the game's quests (the points and when they are
given, and when the game is lost), since "Your score has just gone up" and
"*** The End ***" follow from them.

:func:`render` evaluates those descriptions against the game's initial facts
with Inform's rules for the few constructs TextWorld's generator writes:
``[if C]...[else if C]...[otherwise]...[end if]`` over ``X is open|closed|
locked``, ``there is something|nothing in|on the X`` and ``the X contains
nothing`` (joined by ``and``); ``[a list of things in|on the X]``; ``[noun]``;
and the room's "There is ... on the floor." line. Locked things are closed,
as in Inform. Lists follow the order of the game's placement sentences
(Inform's object tree at the start). The tests hold the rendering to the
engine's own text for the start room, for every room reached by walking, and
for examined things.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_IF_RE = re.compile(r"\[(if|else if|otherwise|else|end if)([^\]]*)\]")
_LIST_RE = re.compile(r"\[a list of things (in|on) the (\w+)\]")
_PLACE_RE = re.compile(r"^The (\w+) is (in|on) (?:the )?(\w+)\.$", re.M)
_PRINTED_RE = re.compile(r'^The printed name of (\w+) is "([^"]*)"\.', re.M)
_ARTICLE_RE = re.compile(r'^The indefinite article of (\w+) is "([^"]*)"\.', re.M)
_ADJ_RE = re.compile(r"^The (\w+) is (sliced|diced|chopped|needs cooking|grilled|roasted|fried|burned)\.$", re.M)
_CONTAINERS = {"c", "oven", "toaster"}
_FIXED = {"c", "s", "d", "oven", "stove", "toaster", "slot", "meal_slot", "r", "P", "I"}


@dataclass
class _State:
    """The initial facts a description can ask about."""

    names: dict[str, str]
    types: dict[str, str]
    printed: dict[str, str] = field(default_factory=dict)
    """Room id -> its printed name ("-= Basement =-")."""
    articles: dict[str, str] = field(default_factory=dict)
    """Thing id -> its indefinite article where the source sets one ("some" milk)."""
    open: set[str] = field(default_factory=set)
    locked: set[str] = field(default_factory=set)
    contents: dict[str, list[str]] = field(default_factory=dict)
    """Container or supporter (or room) id -> its things, in Inform's listing order."""


def _state(game: Any, source: str) -> _State:
    names = {k: v.name for k, v in game.infos.items() if v.name}
    types = {k: v.type for k, v in game.infos.items()}
    # A food's printed name carries its state while looking or examining: "diced raw yellow potato".
    adjectives: dict[str, dict[str, str]] = {}
    for thing, adj in _ADJ_RE.findall(source):
        slot = "cut" if adj in ("sliced", "diced", "chopped") else "cook"
        if slot == "cook" and adjectives.get(thing, {}).get("cook") == "burned":
            continue
        adjectives.setdefault(thing, {})[slot] = "raw" if adj == "needs cooking" else adj
    for thing, adj in adjectives.items():
        if thing in names:
            names[thing] = " ".join(a for a in (adj.get("cut"), adj.get("cook"), names[thing]) if a)
    st = _State(names=names, types=types, printed=dict(_PRINTED_RE.findall(source)),
                articles=dict(_ARTICLE_RE.findall(source)))
    where: dict[str, str] = {}
    for f in game.world.facts:
        args = [a.name for a in f.arguments]
        if f.name == "open":
            st.open.add(args[0])
        elif f.name == "locked":
            st.locked.add(args[0])
        elif f.name in ("in", "on", "at") and args[0] != "P":
            where[args[0]] = args[1]
    # Inform lists a holder's things in the order of the source's placement sentences.
    order = {m.group(1): i for i, m in enumerate(_PLACE_RE.finditer(source))}
    for thing, holder in sorted(where.items(), key=lambda kv: order.get(kv[0], 1 << 30)):
        st.contents.setdefault(holder, []).append(thing)
    return st


def _article(name: str) -> str:
    return ("an " if name[:1].lower() in "aeiou" else "a ") + name


def inform_list(names: list[str], articles: list[str | None] | None = None) -> str:
    """Inform's "[a list of ...]": "a knife, an apple and a pan" (``articles``: an indefinite article per name
    where the game sets one, as "some" milk)."""
    items = [f"{a} {n}" if a else _article(n) for n, a in zip(names, articles or [None] * len(names))]
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _listing(things: list[str], st: _State) -> str:
    return inform_list([st.names[t] for t in things], [st.articles.get(t) for t in things])


def _atom(cond: str, st: _State, self_id: str | None) -> bool:
    cond = cond.strip()
    m = re.fullmatch(r"(?:the )?(\w+) is (open|closed|locked)", cond) or re.fullmatch(r"()(open|closed|locked)", cond)
    if m:
        x = m.group(1) or self_id
        if m.group(2) == "open":
            return x in st.open
        if m.group(2) == "closed":
            return x not in st.open
        return x in st.locked
    m = re.fullmatch(r"there is (something|nothing) (?:in|on) the (\w+)", cond)
    if m:
        return bool(st.contents.get(m.group(2))) == (m.group(1) == "something")
    m = re.fullmatch(r"the (\w+) contains nothing", cond)
    if m:
        return not st.contents.get(m.group(1))
    raise ValueError(f"unsupported Inform condition {cond!r}")


def _cond(cond: str, st: _State, self_id: str | None) -> bool:
    return all(_atom(c, st, self_id) for c in cond.split(" and "))


def _conditionals(text: str, st: _State, self_id: str | None) -> str:
    out, pos = [], 0
    stack: list[list[bool]] = []  # per open [if]: [this branch is live, a branch was taken]

    def live() -> bool:
        return all(s[0] for s in stack)

    for m in _IF_RE.finditer(text):
        if live():
            out.append(text[pos:m.start()])
        pos = m.end()
        kind, cond = m.group(1), m.group(2)
        if kind == "if":
            parent = live()
            ok = parent and _cond(cond, st, self_id)
            stack.append([ok, ok or not parent])
        elif kind == "else if":
            taken = stack[-1][1]
            ok = not taken and _cond(cond, st, self_id)
            stack[-1] = [ok, taken or ok]
        elif kind in ("otherwise", "else"):
            stack[-1] = [not stack[-1][1], True]
        else:
            stack.pop()
    out.append(text[pos:])
    return "".join(out)


def render(text: str, st: _State, self_id: str | None = None) -> str:
    text = _conditionals(text, st, self_id)
    text = _LIST_RE.sub(lambda m: _listing(st.contents.get(m.group(2), []), st), text)
    if self_id is not None:
        text = text.replace("[noun]", st.names.get(self_id, self_id))
    return text


def _inform_quotes(text: str) -> str:
    """Inform prints a single quote as a double one unless it stands between letters (an apostrophe)."""
    return re.sub(r"(?<![A-Za-z])'|'(?![A-Za-z])", '"', text)


def _tidy(text: str) -> str:
    """Inform's quotes and paragraphing, as the env's cleaned feedback shows them."""
    text = _inform_quotes(text)
    text = re.sub(r"\n\n[ \t]+", "\n\n", text)
    text = re.sub(r"[ \t]+\n", "\n", text)
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip()


def room_text(room: str, st: _State, game: Any) -> str:
    """What ``look`` shows in ``room`` at the start: its name line, description and the things on its floor."""
    info = game.infos[room]
    body = render(info.desc or "", st, room)
    floor = [t for t in st.contents.get(room, []) if st.types.get(t) not in _FIXED]
    if floor:
        body += f"\n\nThere is {_listing(floor, st)} on the floor."
    return _tidy(f"{st.printed.get(room, info.name)}\n{body}")


def thing_text(thing: str, st: _State, game: Any) -> str:
    """What ``examine`` shows of ``thing`` at the start: its description, then what is in (open) or on it."""
    text = render(game.infos[thing].desc or "", st, thing)
    kind = st.types.get(thing)
    inside = st.contents.get(thing, [])
    if inside and (kind == "s" or (kind in _CONTAINERS and thing in st.open)):
        verb = "is" if len(inside) == 1 else "are"
        listed = _listing(inside, st)
        text += f"\n\n{'On' if kind == 's' else 'In'} the {st.names[thing]} {verb} {listed}."
    if kind in _CONTAINERS and thing not in st.open:
        text += f"\n\nOpened, it shows: {open_text(thing, st)}"
    return _tidy(text)


def open_text(thing: str, st: _State) -> str:
    """What ``open`` prints for the closed container ``thing`` at the start: Inform's "You open the X,
    revealing ..." with its things in listing order, or "You open the X." when it is empty."""
    inside = st.contents.get(thing, [])
    listed = f", revealing {_listing(inside, st)}" if inside else ""
    return f"You open the {st.names[thing]}{listed}."


@functools.lru_cache(maxsize=64)
def sections(game_dir: Path, stem: str = "game") -> tuple[tuple[str, str], ...]:
    """The context sections of the game ``<stem>.json`` in ``game_dir``: every room as ``look`` shows it at
    the start (sorted by name), every described thing as ``examine`` shows it (sorted by name), and the
    scoring. The Inform source ``<stem>.ni`` is read where it is there, else rebuilt from the ``.json``
    (TextWorld's generator writes the same source). Cached per game, so replaying a game does not parse
    its files again."""
    import textworld

    game = textworld.Game.load(str(game_dir / f"{stem}.json"))
    source_file = game_dir / f"{stem}.ni"
    if source_file.is_file():
        source = source_file.read_text()
    else:  # a user's game shipped without its source (tw-make writes it; some game sets leave it out)
        from textworld.generator.inform7 import Inform7Game

        source = Inform7Game(game).gen_source()
    st = _state(game, source)
    rooms = sorted((k for k, v in game.infos.items() if v.type == "r"), key=lambda k: game.infos[k].name)
    things = sorted((k for k, v in game.infos.items() if v.type != "r" and v.name and v.desc),
                    key=lambda k: game.infos[k].name)
    return (
        ("Rooms (as look shows them at the start):", "\n\n".join(room_text(r, st, game) for r in rooms)),
        ("Map (where each way out of a room leads):", "\n".join(map_lines(game, st))),
        ("Things (as examine shows them at the start):",
         "\n".join(f"- {game.infos[t].name}: {thing_text(t, st, game)}" for t in things)),
        ("Scoring:", "\n".join(f"- {line}" for line in scoring(game))),
    )


_DIRECTIONS = {"north_of": "north", "south_of": "south", "east_of": "east", "west_of": "west"}


def map_lines(game: Any, st: _State) -> list[str]:
    """Each way out of each room, in the words of the room headers the player sees: "- From -= Parlor =-,
    go south: -= Basement =-" (rooms by name, then directions), so the room a move leads to is read forward
    from the room and the direction (the facts say it backwards: "The basement is south of the parlor")."""
    header = lambda r: st.printed.get(r, game.infos[r].name)  # noqa: E731
    ways = sorted((game.infos[f.arguments[1].name].name, _DIRECTIONS[f.name], f.arguments[1].name,
                   f.arguments[0].name) for f in game.world.facts if f.name in _DIRECTIONS)
    return [f"- From {header(src)}, go {way}: {header(dst)}" for _, way, src, dst in ways] or ["- No way out."]


def _clause(prop: Any, names: dict[str, str]) -> str:
    args = [a.name for a in prop.arguments]
    n = ["you" if a == "P" else names.get(a, a) for a in args]
    if prop.name == "in" and args[1] == "I":
        return f"you carry the {n[0]}"
    if prop.name == "at" and args[0] == "P":
        return f"you are in the {n[1]}"
    if prop.name in ("in", "at", "on") and len(args) == 2:
        return f"the {n[0]} is {'on' if prop.name == 'on' else 'in'} the {n[1]}"
    if len(args) == 1:
        return f"the {n[0]} is {prop.name.replace('_', ' ')}"
    return f"{prop.name}({', '.join(n)})"


def scoring(game: Any) -> list[str]:
    """The game's quests as lines: the points it gives and when, and when it is lost."""
    names = {k: v.name for k, v in game.infos.items() if v.name}
    lines = [f"The maximum score is {game.max_score}; the game is won when it is reached, and then it says: "
             f"*** The End *** You scored {game.max_score} out of a possible {game.max_score}, in (one more than "
             "the commands so far) turns."]
    for q in game.quests:
        for e in q.win_events:
            if q.reward:
                what = " and ".join(_clause(p, names) for p in e.condition.preconditions)
                lines.append(f"{q.reward} point{'s' if q.reward != 1 else ''} when {what}.")
        # TextWorld's generator writes a quest's fail events in no fixed order: sorted, the same game has the same
        # context whichever generation of it is played.
        lines += sorted(f"The game is lost when {' and '.join(_clause(p, names) for p in e.condition.preconditions)}."
                        for e in q.fail_events)
    return list(dict.fromkeys(lines))  # a loss shared by several quests is said once
