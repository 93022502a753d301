"""AI2-THOR floor plans as ALFWorld sees them, read from the ``alfworld`` package.

Each floor plan ships three files under ``alfworld/gen/layouts``:
``FloorPlan<N>-objects.json`` (the object classes in the room),
``FloorPlan<N>-openable.json`` (receptacle instances and the pose an agent
takes to reach them) and ``FloorPlan<N>-layout.npy`` (navigable points).

A :class:`Scene` is a pure function of those files: its receptacles, their
locations, and which movable object classes the room holds. Receptacle classes
that the room holds but the pose file lacks (coffee machines, toasters, stove
burners, garbage cans, towel holders...) get instances at navigable points
drawn with a generator seeded by the floor-plan number, so a floor plan always
looks the same.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from pathlib import Path

import numpy as np

#: Room types and their floor-plan numbers (ALFRED's ``SCENE_TYPE``).
ROOM_TYPES = {"Kitchen": range(1, 31), "LivingRoom": range(201, 231),
              "Bedroom": range(301, 331), "Bathroom": range(401, 431)}
#: Floor plans ALFRED trains on (7-30 of each room type) and holds out (1-6).
TRAIN_FLOOR_PLANS = tuple(n for r in ROOM_TYPES.values() for n in r if n % 100 >= 7)
UNSEEN_FLOOR_PLANS = tuple(n for r in ROOM_TYPES.values() for n in r if n % 100 < 7)

#: Surfaces a lamp may stand on (lamps are fixed; ALFRED places none of them).
LAMP_SURFACES = ("Desk", "SideTable", "Dresser", "Shelf", "CoffeeTable", "DiningTable", "TVStand")
#: Receptacles the pose file may lack and how many instances a room gets.
_SYNTHESIZED_COUNT = {"StoveBurner": 4}


@dataclasses.dataclass(frozen=True)
class Receptacle:
    """A static receptacle: ALFRED object id, class and the location reaching it."""

    id: str
    cls: str
    location: str


@dataclasses.dataclass(frozen=True)
class Scene:
    """One floor plan: its receptacles and the movable classes it holds."""

    number: int
    room: str
    receptacles: tuple[Receptacle, ...]
    #: Pickupable classes present that at least one receptacle here can hold.
    object_classes: tuple[str, ...]
    #: Toggleable lamps present that have a surface to stand on.
    toggle_classes: tuple[str, ...]
    #: Navigable points (grid units) not used by a receptacle: where the agent may start.
    free_points: tuple[tuple[int, int], ...]

    @property
    def receptacle_classes(self) -> set[str]:
        return {r.cls for r in self.receptacles}

    def of_class(self, cls: str) -> list[Receptacle]:
        return [r for r in self.receptacles if r.cls == cls]


def layouts_dir() -> Path:
    import alfworld.gen

    return Path(alfworld.gen.__file__).parent / "layouts"


def room_of(number: int) -> str:
    for room, numbers in ROOM_TYPES.items():
        if number in numbers:
            return room
    valid = ", ".join(f"{r.start}-{r.stop - 1}" for r in ROOM_TYPES.values())
    raise ValueError(f"floor plan {number} does not exist; valid floor plans: {valid}")


def _receptacle_class(object_id: str) -> str:
    parts = object_id.split("|")
    if len(parts) <= 4:
        return parts[0]
    # "Sink|x|y|z|SinkBasin": the basin is the receptacle; one bathtub is mislabelled SinkBasin.
    return "BathtubBasin" if parts[0] == "Bathtub" else parts[-1]


def _location(x: float, z: float, rotation: float, horizon: float) -> str:
    return f"loc|{round(x / 0.25)}|{round(z / 0.25)}|{round(rotation / 90) % 4}|{round(horizon)}"


@functools.lru_cache(maxsize=None)
def load_scene(number: int) -> Scene:
    """Read floor plan ``number`` (cached per process)."""
    import alfworld.gen.constants as C

    room = room_of(number)
    root = layouts_dir()
    present = set(json.loads((root / f"FloorPlan{number}-objects.json").read_text()))
    poses = json.loads((root / f"FloorPlan{number}-openable.json").read_text())
    points = np.load(root / f"FloorPlan{number}-layout.npy")
    static = C.RECEPTACLES - set(C.MOVABLE_RECEPTACLES)

    used: set[str] = set()

    def unique(loc: str) -> str:
        # Receptacles sharing a pose would make "go to" ambiguous; a suffix keeps locations distinct.
        base, k = loc, 1
        while loc in used:
            loc, k = f"{base}|{k}", k + 1
        used.add(loc)
        return loc

    receptacles = []
    for object_id in sorted(poses):
        cls = _receptacle_class(object_id)
        if cls in static:
            receptacles.append(Receptacle(object_id, cls, unique(_location(*poses[object_id]))))
    rng = np.random.default_rng(number)
    order = rng.permutation(len(points))
    grid = [(round(points[i][0] / 0.25), round(points[i][1] / 0.25)) for i in order]
    taken = {tuple(int(v) for v in r.location.split("|")[1:3]) for r in receptacles}
    free = [p for p in grid if p not in taken]
    have = {r.cls for r in receptacles}
    for cls in sorted((present & static) - have):
        for _ in range(_SYNTHESIZED_COUNT.get(cls, 1)):
            gx, gz = free.pop()
            object_id = f"{cls}|{gx * 0.25:+06.2f}|{rng.uniform(0.0, 1.0):+06.2f}|{gz * 0.25:+06.2f}"
            receptacles.append(Receptacle(object_id, cls, unique(_location(gx * 0.25, gz * 0.25,
                                                                           90 * int(rng.integers(4)), 30))))
    receptacles.sort(key=lambda r: r.id)
    classes = {r.cls for r in receptacles}
    holdable = {o for r in classes for o in C.VAL_RECEPTACLE_OBJECTS.get(r, ())}
    objects = sorted(c for c in present if c in holdable and c in C.OBJECTS and c not in static)
    lamps = sorted(c for c in present & C.VAL_ACTION_OBJECTS["Toggleable"] if classes & set(LAMP_SURFACES))
    return Scene(number, room, tuple(receptacles), tuple(objects), tuple(lamps), tuple(free))


def pddl_name(object_id: str) -> str:
    """ALFRED's escaping of an object id into a PDDL name (``fix_pddl_str_chars``)."""
    table = {"-": "_minus_", "|": "_bar_", "+": "_plus_", ".": "_dot_", ",": "_comma_"}
    return "".join(table.get(ch, ch) for ch in object_id)
