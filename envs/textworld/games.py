"""TextWorld games compiled locally, deterministic from (split, index).

Each split is a fixed list of game *slots*; slot ``i`` of split ``s`` is built
from a seed derived from ``(s, i)`` the first time it is asked for and cached
under ``WMGYM_HOME/textworld/v0/<split>/<i>/``. Seeds of different splits are
drawn from disjoint ranges, so train and test never share a game.

The mix covers TextWorld's own generator (1-6 rooms, 2-14 objects, quests of
1-5 steps) and the First TextWorld Problems cooking games (recipes of 1-3
ingredients, cutting, cooking, closed containers, several rooms), so the
dynamics the twin learns are varied: navigation, containers, keys, food
preparation, and losing by eating the wrong thing.

The user's own games (``gym.make("TextWorld-v0", game_files=[...])``) form
one split, ``user``, in the order given; :func:`user_games` checks them and
:func:`playable_user_game` gives the file to play.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from wmgym.paths import atomic_dir, generate_missing, locked, wmgym_home

logger = logging.getLogger(__name__)

#: Number of games per split (ALFWorld-sized train set, like Word2World's TextWorld data).
SPLIT_SIZES = {"train": 2500, "test": 200}
#: Seed offsets keep the splits' games disjoint.
_SPLIT_SEED_BASE = {"train": 1_000_000, "test": 2_000_000}
CACHE_VERSION = "v0"
#: Share of cooking games in the mix.
COOKING_SHARE = 0.4


def game_dir(split: str, index: int) -> Path:
    return wmgym_home() / "textworld" / CACHE_VERSION / split / f"{index:05d}"


def game_spec(split: str, index: int) -> dict[str, Any]:
    """The generation settings of slot ``index`` of ``split`` (pure function of both)."""
    if split not in SPLIT_SIZES:
        raise ValueError(f"unknown TextWorld split {split!r}; valid splits: {list(SPLIT_SIZES)}")
    seed = _SPLIT_SEED_BASE[split] + index
    rng = np.random.default_rng(seed)
    if rng.random() < COOKING_SHARE:
        recipe = int(rng.integers(1, 4))
        return {
            "kind": "cooking",
            "seed": seed,
            "recipe": recipe,
            "take": int(rng.integers(1, recipe + 1)),
            "go": int(rng.choice([1, 6])),
            "open": bool(rng.random() < 0.5),
            "cook": bool(rng.random() < 0.5),
            "cut": bool(rng.random() < 0.5),
        }
    nb_rooms = int(rng.integers(1, 7))
    return {
        "kind": "custom",
        "seed": seed,
        "nb_rooms": nb_rooms,
        "nb_objects": int(rng.integers(2 + nb_rooms, 9 + nb_rooms)),
        "quest_length": int(rng.integers(1, 6)),
    }


def _make_game(spec: dict[str, Any], path: Path):
    import textworld
    from textworld.generator import compile_game, make_game

    last_error: Exception | None = None
    for attempt in range(8):  # some seeds admit no quest of the asked length; retry deterministically
        options = textworld.GameOptions()
        options.seeds = spec["seed"] + 7919 * attempt
        options.path = str(path / "game.z8")
        options.force_recompile = True
        try:
            if spec["kind"] == "cooking":
                from textworld.challenges.tw_cooking import cooking

                settings = {k: spec[k] for k in ("recipe", "take", "go", "open", "cook", "cut")}
                settings.update(split=None, drop=False, recipe_seed=0)
                game = cooking.make(settings, options)
            else:
                options.nb_rooms = spec["nb_rooms"]
                options.nb_objects = spec["nb_objects"]
                options.quest_length = spec["quest_length"]
                game = make_game(options)
            return compile_game(game, options), options.seeds
        except Exception as e:  # noqa: BLE001 - TextWorld raises many error types for unlucky seeds
            last_error = e
            logger.debug("TextWorld generation attempt %d failed: %s", attempt, e)
    raise RuntimeError(f"could not generate TextWorld game {spec}: {last_error}")


def ensure_game(split: str, index: int) -> Path:
    """Path of the compiled game for slot ``index`` of ``split``, generating it if needed."""
    n = SPLIT_SIZES[split]
    if not 0 <= index < n:
        raise ValueError(f"TextWorld game index {index} out of range for split {split!r}: valid are 0..{n - 1}")
    final = game_dir(split, index)
    z8 = final / "game.z8"
    if z8.exists():
        return z8
    with locked(final):
        if z8.exists():  # another process generated it while we waited
            return z8
        spec = game_spec(split, index)
        with atomic_dir(final) as tmp:
            _, seeds = _make_game(spec, tmp)
            (tmp / "spec.json").write_text(json.dumps({**spec, "textworld_seeds": str(seeds)}))
    return z8


def ensure_games(split: str, indices: list[int], workers: int = 1, progress: bool = True) -> None:
    """Generate missing games (in ``workers`` processes), with a progress bar."""
    missing = [i for i in indices if not (game_dir(split, i) / "game.z8").exists()]
    generate_missing(ensure_game, split, missing, label="TextWorld", workers=workers, progress=progress)


# ------------------------------------------------------------------ user games
#: The one split of an env made with ``game_files=``: the user's games, in the order given.
USER_SPLIT = "user"
#: Game files TextWorld-v0 plays: Z-machine (``tw-make``'s output) and Glulx (older TextWorld releases).
USER_SUFFIXES = (".z8", ".ulx")


def user_games(game_files: Sequence[str | os.PathLike]) -> tuple[Path, ...]:
    """Check the user's game files and return them as paths, in the order given.

    Each game needs the ``.json`` that TextWorld writes beside it (``tw-make`` and
    ``textworld.generator.compile_game`` do): it holds the task, the initial facts,
    the quests the expert plans from, and the room and thing texts of the context.
    The Inform source (``.ni``) is rebuilt from the ``.json`` where it is missing.

    Raises:
        ValueError: no games, or a file that is not a ``.z8`` / ``.ulx`` game.
        FileNotFoundError: a game file, or the ``.json`` beside it, is missing.
    """
    if isinstance(game_files, (str, os.PathLike)):
        game_files = [game_files]  # one path given bare: the user meant a list of one
    paths = tuple(Path(p).expanduser().resolve() for p in game_files)
    if not paths:
        raise ValueError("game_files=[] holds no games; give paths of .z8 or .ulx games made by tw-make")
    for path in paths:
        if path.suffix not in USER_SUFFIXES:
            raise ValueError(f"game file {str(path)!r} is not a TextWorld game; valid suffixes: {list(USER_SUFFIXES)}")
        if not path.is_file():
            raise FileNotFoundError(f"game file {str(path)!r} does not exist")
        if not path.with_suffix(".json").is_file():
            raise FileNotFoundError(
                f"{path.with_suffix('.json')} is missing: TextWorld-v0 reads a game's task, initial state, quests "
                f"(the expert) and context from the .json TextWorld writes beside {path.name}; play games made by "
                "tw-make or textworld.generator.compile_game")
    return paths


def playable_user_game(path: Path) -> Path:
    """The Z-machine file to play for the user's game ``path``.

    A ``.z8`` is played as it is. TextWorld no longer plays Glulx, so a ``.ulx``
    game is compiled again from its ``.json`` (the same game: text and rules
    come from the ``.json``) into ``WMGYM_HOME/textworld/user/<hash of the
    .json>/``, once.
    """
    if path.suffix == ".z8":
        return path
    source = path.with_suffix(".json")
    final = wmgym_home() / "textworld" / "user" / hashlib.sha256(source.read_bytes()).hexdigest()[:16]
    z8 = final / "game.z8"
    if z8.exists():
        return z8
    with locked(final):
        if z8.exists():
            return z8
        import textworld
        from textworld.generator import compile_game

        options = textworld.GameOptions()
        with atomic_dir(final) as tmp:
            options.path = str(tmp / "game.z8")
            options.force_recompile = True
            compile_game(textworld.Game.load(str(source)), options)
    logger.info("compiled %s from %s to %s (TextWorld plays no Glulx)", path.name, source.name, z8)
    return z8
