"""What every registered env declares for training and benchmarks (``TextEnv`` class attributes and hooks).

Parametrised over the registry, so a new env is checked for free: a declaration that is wrong (a held-out split
it does not have, an entry point that does not import, a recipe field ``SFTConfig`` does not know) fails here,
naming the piece, instead of deep inside ``wmgym train default`` or ``wmgym bench``.
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any

import pytest

import wmgym
from wmgym.envs.base import DEFAULT_FORMAT, FORMATS
from wmgym.envs import (TWIN_PREFIX, TextEnv, env_class, heldout_split, load_entry_point, real_id, registered_ids,
                        twin_id)

REAL_IDS = [i for i in registered_ids() if not i.startswith(TWIN_PREFIX)]
RECIPE_FIELDS = {"train", "test", "sft", "max_steps", "spread"}
WORD2WORLD_IDS = {"TextWorld-v0", "ALFWorld-v0", "SciWorld-v0", "WebShop-v0"}


def _entry_point_problem(piece: str, entry: Any) -> str | None:
    if entry is None:
        return None
    if not isinstance(entry, str):
        return f"{piece} must be a 'module:attribute' string or None, got {entry!r}"
    try:
        target = load_entry_point(entry)
    except (ImportError, ValueError) as e:
        return f"{piece} {entry!r} does not resolve: {e}"
    return None if callable(target) else f"{piece} {entry!r} names {target!r}, which is not callable"


def _recipe_problems(recipe: Any) -> list[str]:
    from wmgym.training.sft import SFTConfig

    if recipe is None:
        return []
    if not isinstance(recipe, dict):
        return [f"default_twin must be a dict of recipe fields or None, got {recipe!r}"]
    problems = []
    unknown = set(recipe) - RECIPE_FIELDS
    if unknown:
        problems.append(f"default_twin has unknown fields {sorted(unknown)}; valid: {sorted(RECIPE_FIELDS)}")
    for part in ("train", "test"):
        plan = recipe.get(part, [("expert", 1)])
        if not plan or not all(len(p) == 2 and isinstance(p[0], str) and isinstance(p[1], int) and p[1] > 0
                                for p in plan):
            problems.append(f"default_twin[{part!r}] must list (policy, episodes > 0) pairs, got {plan!r}")
    sft_fields = {f.name for f in dataclasses.fields(SFTConfig)}
    bad = set(recipe.get("sft", {})) - sft_fields
    if bad:
        problems.append(f"default_twin['sft'] has fields SFTConfig does not know: {sorted(bad)}")
    steps = recipe.get("max_steps")
    if steps is not None and not (isinstance(steps, int) and steps > 0):
        problems.append(f"default_twin['max_steps'] must be a positive int or None, got {steps!r}")
    if not isinstance(recipe.get("spread", False), bool):
        problems.append(f"default_twin['spread'] must be True or False, got {recipe['spread']!r}")
    return problems


def declaration_problems(cls: type) -> list[str]:
    """Every declaration of ``cls`` that training or the benchmarks could not use, each naming the piece."""
    problems = []
    if not (isinstance(cls, type) and issubclass(cls, TextEnv)):
        return [f"{cls!r} is not a TextEnv subclass, so it declares nothing"]
    if cls.heldout_split not in cls.splits:
        problems.append(f"heldout_split {cls.heldout_split!r} is not one of its splits {list(cls.splits)}")
    problems += filter(None, [_entry_point_problem("scripted_agent", cls.scripted_agent),
                              _entry_point_problem("engine_benchmark", cls.engine_benchmark)])
    problems += _recipe_problems(cls.default_twin)
    actions = cls.irreversible_actions
    if not (isinstance(actions, tuple) and all(isinstance(a, str) and a.strip() for a in actions)):
        problems.append(f"irreversible_actions must be a tuple of non-empty action strings, got {actions!r}")
    formats = cls.formats
    if not (isinstance(formats, tuple) and DEFAULT_FORMAT in formats and set(formats) <= set(FORMATS)):
        problems.append(f"formats must be a tuple holding {DEFAULT_FORMAT!r} and only names of {list(FORMATS)}, "
                        f"got {formats!r}")
    hook = getattr(cls, "prepare_games", None)
    if not callable(hook):
        problems.append("prepare_games is not callable")
    elif list(inspect.signature(hook).parameters) != ["self", "split", "indices", "workers", "progress"]:
        problems.append(f"prepare_games{inspect.signature(hook)} does not take (split, indices, workers, progress)")
    return problems


@pytest.mark.parametrize("env_id", REAL_IDS)
def test_every_env_declares_what_training_and_benchmarks_read(env_id):
    cls = env_class(env_id)
    assert declaration_problems(cls) == [], f"{env_id} ({cls.__name__})"
    assert heldout_split(env_id) == heldout_split(twin_id(env_id)) == cls.heldout_split


def test_a_wrong_declaration_fails_naming_the_piece():
    class Broken(TextEnv):
        splits = ("train", "dev")  # no "test": the default heldout_split is wrong for it
        scripted_agent = "wmgym.agents.scripted.nosuchenv:Agent"
        engine_benchmark = "wmgym.benchmarks.engines"  # no ":attribute"
        default_twin = {"train": [("expert", 0)], "sft": {"learning_rate_typo": 1.0}, "max_stepz": 3}
        prepare_games = None
        irreversible_actions = "click[buy now]"  # a string, not a tuple of actions
        formats = ("word2world",)  # without the default rendering

    text = "\n".join(declaration_problems(Broken))
    for piece in ("heldout_split", "scripted_agent", "engine_benchmark", "default_twin[", "learning_rate_typo",
                  "max_stepz", "prepare_games", "irreversible_actions", "formats"):
        assert piece in text, f"{piece} not named in:\n{text}"


def test_the_declared_values():
    assert heldout_split("ALFWorld-v0") == "valid_unseen" and heldout_split("WM-TextWorld-v0") == "test"
    assert heldout_split("ALFWorld-v0", "train") == "train"  # an explicit split wins
    assert env_class("TextWorld-v0").scripted_agent == "wmgym.agents.scripted.textworld:TextWorldAgent"
    assert env_class("ALFWorld-v0").scripted_agent == "wmgym.agents.scripted.alfworld:ALFWorldAgent"
    assert env_class("WM-ALFWorld-v0") is env_class("ALFWorld-v0")  # a twin id reads its real env's declarations
    assert env_class("ALFWorld-v0").engine_benchmark == "wmgym.benchmarks.engines.alfworld:main"
    assert env_class("TextWorld-v0").engine_benchmark is None
    assert env_class("WebShop-v0").irreversible_actions == ("click[buy now]",)
    assert env_class("TextWorld-v0").irreversible_actions == ()


def test_twin_ids_and_entry_points():
    assert twin_id("TextWorld-v0") == twin_id("WM-TextWorld-v0") == "WM-TextWorld-v0"
    assert real_id("WM-TextWorld-v0") == real_id("TextWorld-v0") == "TextWorld-v0"
    assert set(REAL_IDS) == {real_id(i) for i in registered_ids()}
    assert load_entry_point("wmgym.envs:twin_id") is twin_id
    with pytest.raises(ValueError, match="'wmgym.envs'.*module:attribute"):
        load_entry_point("wmgym.envs")
    with pytest.raises(ImportError, match="no attribute 'nope'"):
        load_entry_point("wmgym.envs:nope")
    with pytest.raises(ModuleNotFoundError):
        load_entry_point("wmgym.no_such_module:x")
    assert wmgym.envs.heldout_split is heldout_split


def test_an_env_refuses_a_format_it_does_not_render():
    """An env that does not declare Word2World's rendering says so, instead of its own strings under that name."""

    class OwnStringsOnly(TextEnv):
        def _num_games(self, split: str) -> int:
            return 1

    assert OwnStringsOnly().format == DEFAULT_FORMAT
    with pytest.raises(ValueError, match=r"not supported by OwnStringsOnly; choose one of \['wmgym'\]"):
        OwnStringsOnly(format="word2world")
    for env_id in REAL_IDS:  # every env Word2World played renders both (the tool envs render only ours)
        assert env_class(env_id).formats == (FORMATS if env_id in WORD2WORLD_IDS else (DEFAULT_FORMAT,)), env_id
