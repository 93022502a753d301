"""ALFWorld tasks: sampling one on a floor plan by ALFRED's rules, and its PDDL problem.

A :class:`TaskSpec` says everything a game needs: the task type and its
targets, where every movable object lies, where the agent starts and the task
sentence. :func:`sample_task` draws one from a numpy generator only (no global
state), following ALFRED's ``TaskGameState`` filters:

- every object lies in a receptacle that may hold its class
  (``VAL_RECEPTACLE_OBJECTS``); so must the goal receptacle;
- heat / cool / clean tasks need a microwave / fridge / sink basin, never use
  it as the goal receptacle, and no object of the target class starts in it;
- place tasks start with no object of the target class in a receptacle of the
  goal class (so the goal is not met at the start); pick-two needs two or more;
- each task type only in the rooms ALFRED allows (``GOALS_VALID``), and
  look-at-in-light needs a lamp, which starts off.

:func:`problem_pddl` writes the problem in ALFWorld's ``initial_state.pddl``
form for ``alfworld/data/alfred.pddl``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from wmgym.envs.alfworld.scenes import LAMP_SURFACES, Scene, pddl_name

#: ALFWorld's six task types, in ALFWorld's order (``TASK_TYPES`` 1..6).
TASK_TYPES = ("pick_and_place_simple", "look_at_obj_in_light", "pick_clean_then_place_in_recep",
              "pick_heat_then_place_in_recep", "pick_cool_then_place_in_recep", "pick_two_obj_and_place")
#: The appliance a state-change task uses, and the property its object needs.
_APPLIANCE = {"pick_clean_then_place_in_recep": ("SinkBasin", "Cleanable"),
              "pick_heat_then_place_in_recep": ("Microwave", "Heatable"),
              "pick_cool_then_place_in_recep": ("Fridge", "Coolable")}
#: How many instances of an object class a room holds (ALFRED: 1..MAX_NUM_OF_OBJ_INSTANCES=3).
_COUNT_CHOICES, _COUNT_PROBS = (1, 2, 3), (0.6, 0.3, 0.1)


@dataclasses.dataclass
class TaskSpec:
    """One ALFWorld game before it is written to files."""

    task_type: str
    floor_plan: int
    object_target: str
    parent_target: str
    toggle_target: str
    task_desc: str
    agent_location: str
    #: (object id, class, receptacle id) for every movable object and lamp.
    objects: list[tuple[str, str, str]]

    def pddl_params(self) -> dict[str, Any]:
        return {"object_target": self.object_target, "parent_target": self.parent_target,
                "toggle_target": self.toggle_target, "mrecep_target": "", "object_sliced": False}

    def folder_name(self) -> str:
        """ALFWorld's task folder name, e.g. ``pick_and_place_simple-Apple-None-Fridge-12``."""
        return f"{self.task_type}-{self.object_target}-None-{self.parent_target or self.toggle_target}-{self.floor_plan}"


def valid_task_types(scene: Scene) -> list[str]:
    """The task types ALFRED allows in this room that the room can support."""
    import alfworld.gen.constants as C

    out = []
    for t in TASK_TYPES:
        if scene.room not in C.GOALS_VALID[t]:
            continue
        if t in _APPLIANCE and _APPLIANCE[t][0] not in scene.receptacle_classes:
            continue
        if t == "look_at_obj_in_light" and not scene.toggle_classes:
            continue
        out.append(t)
    return out


def _choice(rng: np.random.Generator, items: list) -> Any:
    return items[int(rng.integers(len(items)))]


def sample_task(rng: np.random.Generator, scene: Scene, task_type: str) -> TaskSpec | None:
    """Draw a task of ``task_type`` on ``scene``; ``None`` if this draw admits none."""
    import alfworld.gen.constants as C
    import alfworld.gen.goal_library as glib

    if task_type not in TASK_TYPES:
        raise ValueError(f"unknown ALFWorld task type {task_type!r}; valid task types: {list(TASK_TYPES)}")
    holders = {cls: [r for r in scene.receptacles if cls in C.VAL_RECEPTACLE_OBJECTS.get(r.cls, ())]
               for cls in scene.object_classes}
    appliance, prop = _APPLIANCE.get(task_type, (None, None))
    candidates = [c for c in scene.object_classes if prop is None or c in C.VAL_ACTION_OBJECTS[prop]]
    if not candidates:
        return None
    obj = _choice(rng, candidates)
    parent = toggle = ""
    forbidden = {appliance} if appliance else set()
    if task_type == "look_at_obj_in_light":
        toggle = _choice(rng, list(scene.toggle_classes))
    else:
        parents = sorted({r.cls for r in holders[obj]} - {appliance})
        if not parents:
            return None
        parent = _choice(rng, parents)
        if task_type in ("pick_and_place_simple", "pick_two_obj_and_place"):
            forbidden.add(parent)
    target_holders = [r for r in holders[obj] if r.cls not in forbidden]
    if not target_holders:
        return None

    objects: list[tuple[str, str, str]] = []
    used_ids: set[str] = set()

    def place(cls: str, where: list) -> None:
        while True:  # ids carry made-up coordinates, as ALFRED's do; they only need to be unique
            oid = f"{cls}|{rng.uniform(-3, 3):+06.2f}|{rng.uniform(0, 2):+06.2f}|{rng.uniform(-3, 3):+06.2f}"
            if oid not in used_ids:
                break
        used_ids.add(oid)
        objects.append((oid, cls, _choice(rng, where).id))

    for cls in scene.object_classes:
        n = int(rng.choice(_COUNT_CHOICES, p=_COUNT_PROBS))
        if cls == obj and task_type == "pick_two_obj_and_place":
            n = max(n, 2)
        for _ in range(n):
            place(cls, target_holders if cls == obj else holders[cls])
    surfaces = [r for r in scene.receptacles if r.cls in LAMP_SURFACES]
    for lamp in scene.toggle_classes:
        place(lamp, surfaces)

    template = _choice(rng, list(glib.gdict[task_type]["templates"]))
    desc = template.format(obj=obj.lower(), recep=parent.lower(), toggle=toggle.lower(), mrecep="")
    gx, gz = scene.free_points[int(rng.integers(len(scene.free_points)))]
    start = f"loc|{gx}|{gz}|{int(rng.integers(4))}|30"
    return TaskSpec(task_type, scene.number, obj, parent, toggle, desc, start, objects)


def problem_pddl(spec: TaskSpec, scene: Scene, name: str) -> str:
    """The PDDL problem of ``spec`` (ALFWorld's ``initial_state.pddl`` layout)."""
    import alfworld.gen.constants as C
    import alfworld.gen.goal_library as glib

    static = C.RECEPTACLES - set(C.MOVABLE_RECEPTACLES)
    otypes = sorted(C.OBJECTS_SET - static)
    rtypes = sorted(static)
    recep_by_id = {r.id: r for r in scene.receptacles}
    locations = sorted({r.location for r in scene.receptacles} | {spec.agent_location})
    n = pddl_name

    lines = [f"(define (problem {name})", "(:domain alfred)", "(:objects", "agent1 - agent"]
    lines += [f"{t}Type - otype" for t in otypes] + [f"{t}Type - rtype" for t in rtypes]
    lines += [f"{n(oid)} - object" for oid, _, _ in spec.objects]
    lines += [f"{n(r.id)} - receptacle" for r in scene.receptacles]
    lines += [f"{n(loc)} - location" for loc in locations]
    lines += [")", "(:init"]
    lines += [f"(receptacleType {n(r.id)} {r.cls}Type)" for r in scene.receptacles]
    lines += [f"(openable {n(r.id)})" for r in scene.receptacles if r.cls in C.OPENABLE_CLASS_SET]
    lines += [f"(receptacleAtLocation {n(r.id)} {n(r.location)})" for r in scene.receptacles]
    classes = sorted({cls for _, cls, _ in spec.objects})
    lines += [f"(canContain {rc}Type {oc}Type)" for rc in sorted(scene.receptacle_classes) for oc in classes
              if oc in C.VAL_RECEPTACLE_OBJECTS.get(rc, ())]
    props = {"cleanable": "Cleanable", "heatable": "Heatable", "coolable": "Coolable",
             "sliceable": "Sliceable", "toggleable": "Toggleable"}
    for oid, cls, rid in spec.objects:
        lines.append(f"(objectType {n(oid)} {cls}Type)")
        if cls not in C.VAL_ACTION_OBJECTS["Toggleable"]:
            lines.append(f"(pickupable {n(oid)})")
        lines += [f"({p} {n(oid)})" for p, key in props.items() if cls in C.VAL_ACTION_OBJECTS[key]]
        lines.append(f"(inReceptacle {n(oid)} {n(rid)})")
        lines.append(f"(objectAtLocation {n(oid)} {n(recep_by_id[rid].location)})")
    lines.append(f"(atLocation agent1 {n(spec.agent_location)})")
    lines.append(")")
    goal = glib.gdict[spec.task_type]["pddl"].format(obj=spec.object_target, recep=spec.parent_target,
                                                       toggle=spec.toggle_target, mrecep="")
    lines.append(goal.replace("#", "-").strip())  # ALFRED's goal closes the define too
    return "\n".join(lines) + "\n"
