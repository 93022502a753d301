"""The official ALFWorld game files, when the user has them.

``ALFWORLD_DATA`` names the folder ``alfworld-download`` fills (holding
``json_2.1.1/``) or the ``json_2.1.1`` folder itself. A split is every
``<split>/<task folder>/<trial>/game.tw-pddl`` that ALFWorld's own loader
(``AlfredTWEnv.collect_game_files``) would play: ``traj_data.json`` beside it,
one of the six task types, not a movable-receptacle or sliced task, and marked
``solvable``. Games are sorted by path, so an index names the same game on every
machine with the same data.
"""

from __future__ import annotations

import functools
import json
import logging
import os
from pathlib import Path

from wmgym.envs.alfworld.problem import TASK_TYPES

logger = logging.getLogger(__name__)
_WARNED: set[str] = set()

#: Our split names -> ALFWorld's folder names.
SPLIT_FOLDERS = {"train": "train", "valid_seen": "valid_seen", "valid_unseen": "valid_unseen"}


def data_root() -> Path | None:
    """The official ``json_2.1.1`` folder named by ``ALFWORLD_DATA``, or ``None`` if it names none."""
    value = os.environ.get("ALFWORLD_DATA")
    if not value:
        return None
    root = Path(value).expanduser()
    if (root / "json_2.1.1").is_dir():
        return root / "json_2.1.1"
    if any((root / s).is_dir() for s in SPLIT_FOLDERS.values()):
        return root
    # Importing alfworld sets ALFWORLD_DATA to its (usually empty) cache folder: no data there is no error.
    if root != Path.home() / ".cache" / "alfworld" and value not in _WARNED:
        _WARNED.add(value)
        logger.warning("ALFWORLD_DATA=%s holds neither json_2.1.1/ nor split folders %s; playing generated games",
                       value, sorted(SPLIT_FOLDERS.values()))
    return None


def _playable(game_file: Path) -> bool:
    folder = game_file.parent
    if "movable" in str(folder) or "Sliced" in str(folder) or not (folder / "traj_data.json").exists():
        return False
    try:
        if json.loads((folder / "traj_data.json").read_text())["task_type"] not in TASK_TYPES:
            return False
        return bool(json.loads(game_file.read_text()).get("solvable"))
    except (OSError, ValueError, KeyError):
        return False


@functools.lru_cache(maxsize=16)
def _games(folder: str, mtime_ns: int) -> tuple[Path, ...]:
    return tuple(p for p in sorted(Path(folder).glob("*/*/game.tw-pddl")) if _playable(p))


def official_games(split: str) -> tuple[Path, ...]:
    """The playable official games of ``split`` (empty when ``ALFWORLD_DATA`` is unset)."""
    if split not in SPLIT_FOLDERS:
        raise ValueError(f"unknown ALFWorld split {split!r}; valid splits: {list(SPLIT_FOLDERS)}")
    root = data_root()
    if root is None or not (root / SPLIT_FOLDERS[split]).is_dir():
        return ()
    folder = root / SPLIT_FOLDERS[split]
    return _games(str(folder), folder.stat().st_mtime_ns)  # a new task folder changes the mtime
