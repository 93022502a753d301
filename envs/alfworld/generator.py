"""ALFWorld games generated offline from what the ``alfworld`` package ships.

Slot ``i`` of a split is a pure function of ``(split, i)``: task type
``TASK_TYPES[i % 6]``, a floor plan of the split that supports it, a task drawn
by ALFRED's rules (:mod:`wmgym.envs.alfworld.problem`) and the task sentence,
all from one numpy generator seeded by ``(split, i, attempt)``. A draw is kept
only when ALFWorld's handcoded expert wins it within :data:`MAX_EXPERT_STEPS`
steps (the env's step limit); otherwise the next attempt is drawn.

Splits mirror ALFWorld's: ``train`` and ``valid_seen`` on the training floor
plans (7-30 of each room type), ``valid_unseen`` on floor plans no training game
uses (1-6). Games are written the first time they are asked for, in ALFWorld's
own files (``game.tw-pddl`` + ``traj_data.json``), under
``WMGYM_HOME/alfworld/<version>/<split>/<i>/``, published atomically under a
file lock, so parallel workers never see half a game.
"""

from __future__ import annotations

import functools
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from wmgym.envs.alfworld.problem import TASK_TYPES, TaskSpec, problem_pddl, sample_task, valid_task_types
from wmgym.envs.alfworld.scenes import TRAIN_FLOOR_PLANS, UNSEEN_FLOOR_PLANS, load_scene
from wmgym.paths import atomic_dir, generate_missing, locked, wmgym_home

#: Games per split (ALFWorld-sized training set; 200 for each validation split).
SPLIT_SIZES = {"train": 2420, "valid_seen": 200, "valid_unseen": 200}
SPLIT_FLOOR_PLANS = {"train": TRAIN_FLOOR_PLANS, "valid_seen": TRAIN_FLOOR_PLANS, "valid_unseen": UNSEEN_FLOOR_PLANS}
#: Distinct generator streams per split, so valid_seen never replays a training draw.
_SPLIT_STREAM = {"train": 1, "valid_seen": 2, "valid_unseen": 3}
#: The expert must win within the env's registered step limit.
MAX_EXPERT_STEPS = 50
MAX_ATTEMPTS = 200
CACHE_VERSION = "v0"
GAME_FILE = "game.tw-pddl"


def check_slot(split: str, index: int) -> None:
    if split not in SPLIT_SIZES:
        raise ValueError(f"unknown ALFWorld split {split!r}; valid splits: {list(SPLIT_SIZES)}")
    n = SPLIT_SIZES[split]
    if not 0 <= index < n:
        raise ValueError(f"ALFWorld game index {index} out of range for split {split!r}: valid are 0..{n - 1}")


def game_dir(split: str, index: int) -> Path:
    return wmgym_home() / "alfworld" / CACHE_VERSION / split / f"{index:05d}"


@functools.lru_cache(maxsize=None)
def _floor_plans_for(split: str, task_type: str) -> tuple[int, ...]:
    return tuple(n for n in SPLIT_FLOOR_PLANS[split] if task_type in valid_task_types(load_scene(n)))


@functools.lru_cache(maxsize=1)
def _logic_files() -> tuple[str, str]:
    import alfworld

    data = Path(alfworld.__file__).parent / "data"
    return (data / "alfred.pddl").read_text(), (data / "alfred.twl2").read_text()


def draw_task(split: str, index: int, attempt: int) -> TaskSpec | None:
    """Attempt ``attempt`` at slot ``index`` of ``split`` (``None`` when the draw admits no task)."""
    check_slot(split, index)
    task_type = TASK_TYPES[index % len(TASK_TYPES)]
    rng = np.random.default_rng([_SPLIT_STREAM[split], index, attempt])
    plans = _floor_plans_for(split, task_type)
    return sample_task(rng, load_scene(plans[int(rng.integers(len(plans)))]), task_type)


def write_game(spec: TaskSpec, folder: Path, trial: str) -> Path:
    """Write ``spec`` as ALFWorld's ``game.tw-pddl`` + ``traj_data.json``."""
    domain, grammar = _logic_files()
    problem = problem_pddl(spec, load_scene(spec.floor_plan), f"plan_{trial}")
    folder.mkdir(parents=True, exist_ok=True)
    game = {"pddl_domain": domain, "grammar": grammar.replace("UNKNOWN GOAL", spec.task_desc),
            "pddl_problem": problem, "solvable": None, "walkthrough": None}
    (folder / GAME_FILE).write_text(json.dumps(game))
    traj = {"task_id": trial, "task_type": spec.task_type, "pddl_params": spec.pddl_params(),
            "scene": {"floor_plan": f"FloorPlan{spec.floor_plan}", "scene_num": spec.floor_plan},
            "turk_annotations": {"anns": [{"task_desc": spec.task_desc}]}}
    (folder / "traj_data.json").write_text(json.dumps(traj, indent=1))
    return folder / GAME_FILE


def expert_walkthrough(engine: Any, game_file: Path, max_steps: int = MAX_EXPERT_STEPS) -> list[str] | None:
    """The expert's winning commands from the start of the game, or ``None`` if it does not win."""
    engine.load(game_file)
    state = engine.reset()
    commands: list[str] = []
    while not state["won"] and len(commands) < max_steps:
        plan = engine.expert_plan
        if not plan:
            return None
        state = engine.step(plan[0])
        commands.append(plan[0])
    return commands if state["won"] else None


@functools.lru_cache(maxsize=1)
def _engine() -> Any:
    from wmgym.envs.alfworld.engine import AlfredEngine

    return AlfredEngine()


def _generate(split: str, index: int, folder: Path) -> dict[str, Any]:
    trial = f"wmgym_{split}_{index:05d}"
    for attempt in range(MAX_ATTEMPTS):
        spec = draw_task(split, index, attempt)
        if spec is None:
            continue
        game_file = write_game(spec, folder, trial)
        walkthrough = expert_walkthrough(_engine(), game_file)
        if walkthrough is None:
            continue
        game = json.loads(game_file.read_text())
        game.update(solvable=True, walkthrough=walkthrough)
        game_file.write_text(json.dumps(game))
        meta = {"split": split, "index": index, "attempt": attempt, "folder": spec.folder_name(), "trial": trial,
                "task_type": spec.task_type, "floor_plan": spec.floor_plan, "task": spec.task_desc,
                "expert_steps": len(walkthrough)}
        (folder / "wmgym.json").write_text(json.dumps(meta, indent=1))
        return meta
    raise RuntimeError(f"no ALFWorld game for slot {index} of {split!r} that the expert wins after {MAX_ATTEMPTS} draws")


def ensure_game(split: str, index: int) -> Path:
    """Path of the ``game.tw-pddl`` of slot ``index`` of ``split``, generating it if needed."""
    check_slot(split, index)
    final = game_dir(split, index)
    path = final / GAME_FILE
    if path.exists():
        return path
    with locked(final):
        if path.exists():  # another process generated it while we waited
            return path
        with atomic_dir(final) as tmp:
            _generate(split, index, tmp)
    return path


def ensure_games(split: str, indices: list[int], workers: int = 1, progress: bool = True) -> None:
    """Generate the missing games among ``indices`` (in ``workers`` processes), with a progress bar."""
    for i in indices:
        check_slot(split, i)
    missing = [i for i in indices if not (game_dir(split, i) / GAME_FILE).exists()]
    generate_missing(ensure_game, split, missing, label="ALFWorld", workers=workers, progress=progress)


def export_official(root: str | Path, split: str, indices: list[int]) -> list[Path]:
    """Copy generated games into ALFWorld's folder layout.

    Writes ``<root>/json_2.1.1/<split>/<task folder>/<trial>/`` with
    ``game.tw-pddl``, ``traj_data.json`` and ``initial_state.pddl``, as the
    official data set has them. Returns the game files written.
    """
    out = []
    for i in indices:
        src = ensure_game(split, i).parent
        meta = json.loads((src / "wmgym.json").read_text())
        dst = Path(root) / "json_2.1.1" / split / meta["folder"] / meta["trial"]
        dst.mkdir(parents=True, exist_ok=True)
        for name in (GAME_FILE, "traj_data.json"):
            shutil.copyfile(src / name, dst / name)
        (dst / "initial_state.pddl").write_text(json.loads((src / GAME_FILE).read_text())["pddl_problem"])
        out.append(dst / GAME_FILE)
    return out
