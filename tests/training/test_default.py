"""``wmgym train default`` end to end on a miniature recipe: collect, train, score, and the twin loads it."""

from __future__ import annotations

import json

import gymnasium as gym
import pytest

from wmgym.training import default
from wmgym.worldmodels.loading import default_model_dir


#: What the default twins' recipes hash to (``DefaultRecipe.key()``, with each env's context version) and the data
#: folders their collection plans hash to. The cached default twins under WMGYM_HOME/models/<env> are reused only
#: while the key matches, and collected episodes only while the folder does: a refactor that changes them silently
#: retrains every user's default twin. Changing a recipe must be a deliberate act that retrains the default, and
#: updates these values with it.
PINNED = {"TextWorld-v0": ("d6a80fd6264f", "d997edd104f3"), "ALFWorld-v0": ("d518b947c7ee", "e8a983e21415"),
          "WebShop-v0": ("df0a9705bffe", "b9e951e2c7d9")}


@pytest.mark.parametrize("env_id", sorted(PINNED))
def test_the_default_recipes_keep_their_keys(env_id):
    key, plan = PINNED[env_id]
    assert default.recipe_for(env_id).key() == key
    assert default.data_paths(env_id)[0].parent.name == plan


def test_a_recipe_is_built_from_the_env_declaration(monkeypatch):
    from wmgym.envs.alfworld.env import ALFWorldEnv

    declared = ALFWorldEnv.default_twin
    r = default.recipe_for("ALFWorld-v0")
    assert (r.train, r.test, r.sft, r.max_steps) == ([tuple(p) for p in declared["train"]],
                                                    [tuple(p) for p in declared["test"]], declared["sft"], 30)
    monkeypatch.setattr(ALFWorldEnv, "default_twin", {**declared, "max_stepz": 3})
    with pytest.raises(ValueError, match="max_stepz.*valid fields"):
        default.recipe_for("ALFWorld-v0")
    monkeypatch.setattr(ALFWorldEnv, "default_twin", None)  # no declaration: the generic recipe
    assert default.recipe_for("ALFWorld-v0").sft == default.GENERIC["sft"]


def test_spread_enters_the_hashes_only_when_on(monkeypatch):
    """``spread`` False (every pinned recipe) leaves the recipe key and data folder as they were before the field;
    True gives another key and folder; SciWorld's recipe spreads the generic episodes."""
    import dataclasses

    from wmgym.envs.sciworld.env import SciWorldEnv
    from wmgym.envs.textworld.env import TextWorldEnv

    r = default.recipe_for("TextWorld-v0")
    key, plan = PINNED["TextWorld-v0"]
    assert r.spread is False and r.key() == key
    assert dataclasses.replace(r, spread=True).key() != key
    monkeypatch.setattr(TextWorldEnv, "default_twin", {**TextWorldEnv.default_twin, "spread": False})
    assert default.recipe_for("TextWorld-v0").key() == key and default.data_paths("TextWorld-v0")[0].parent.name == plan
    monkeypatch.setattr(TextWorldEnv, "default_twin", {**TextWorldEnv.default_twin, "spread": True})
    assert default.recipe_for("TextWorld-v0").key() != key and default.data_paths("TextWorld-v0")[0].parent.name != plan

    sci = default.recipe_for("SciWorld-v0")
    assert SciWorldEnv.default_twin["spread"] is True and sci.spread is True
    generic = default._recipe("SciWorld-v0", {})
    alf = default.recipe_for("ALFWorld-v0")
    # SciWorld: the generic episodes (spread), trained with ALFWorld's recipe; its data folder is the one the
    # spread generic recipe collected, so changing how it trains did not recollect
    assert (sci.train, sci.test, sci.max_steps) == (generic.train, generic.test, generic.max_steps)
    assert sci.sft == alf.sft and sci.sft != generic.sft and sci.key() != generic.key()
    assert default.data_paths("SciWorld-v0")[0].parent.name == "5f9ce9afd99a"


def test_collect_data_spreads_a_spread_recipe(monkeypatch):
    """A recipe with ``spread`` collects its train and held-out episodes on the spread order's games."""
    import gymnasium as gym

    from wmgym.envs.textworld.env import TextWorldEnv
    from wmgym.training.collect import game_index
    from wmgym.training.trajectories import read_episodes

    monkeypatch.setattr(TextWorldEnv, "default_twin", {"train": [("random", 3)], "test": [("random", 2)],
                                                       "max_steps": 2, "spread": True})
    train_path, test_path = default.collect_data(default.recipe_for("TextWorld-v0"), workers=1, progress=False)
    env = gym.make("TextWorld-v0").unwrapped
    for path, split, count in ((train_path, "train", 3), (test_path, "test", 2)):
        n = env.num_games(split)
        games = [e.game_id for e in sorted(read_episodes(path), key=lambda e: e.index)]
        assert games == [f"{split}/{game_index(k, n, spread=True):05d}" for k in range(count)]
        assert games[1] != f"{split}/00001"


MINI = {"train": [("expert", 3), ("random", 1)], "test": [("expert", 1)],
        "sft": {"preset": "tiny-s", "max_steps": 6, "batch_tokens": 2048, "eval_steps": 3, "save_steps": 3, "lr": 3e-3},
        "max_steps": 6}


@pytest.fixture
def mini_recipe(monkeypatch):
    from wmgym.envs.textworld.env import TextWorldEnv

    monkeypatch.setattr(TextWorldEnv, "default_twin", MINI)
    return default.recipe_for("TextWorld-v0")


@pytest.mark.slow
def test_train_default_collects_trains_and_installs_the_twin(mini_recipe, capsys, monkeypatch):
    from wmgym.cli import main

    assert main(["train", "default", "--env", "TextWorld-v0", "--workers", "1", "--quiet", "--force"]) == 0
    model_dir = default_model_dir("TextWorld-v0")
    meta = json.loads((model_dir / "wmgym.json").read_text())
    # It ends with a one-screen summary, not the metadata as JSON (EM per step index, the loss curve).
    summary = capsys.readouterr().out.split(f"TextWorld-v0: default twin at {model_dir}")[-1].splitlines()
    assert len(summary) <= 6 and not any(line.lstrip().startswith("{") for line in summary)
    assert f"EM {meta['test']['em']:.1%} over {meta['test']['steps']} steps" in "\n".join(summary)
    assert str(model_dir / "wmgym.json") in summary[-1]
    assert meta["recipe_key"] == mini_recipe.key() and meta["sft"]["steps"] == 6
    assert 0.0 <= meta["test"]["em"] <= 1.0 and meta["test"]["steps"] > 0
    train_path, test_path = default.data_paths("TextWorld-v0")
    assert sum(1 for _ in open(train_path)) == 4 and sum(1 for _ in open(test_path)) == 1

    # The twin finds the default and plays with it.
    twin = gym.make("WM-TextWorld-v0", max_new_tokens=8)
    obs, info = twin.reset(seed=0, options={"game": 0})
    obs, reward, terminated, truncated, info = twin.step("look")
    assert isinstance(obs, str) and "wm_confidence" in info
    twin.close()

    # A second run reuses the trained default instead of retraining.
    capsys.readouterr()
    assert main(["train", "default", "--env", "TextWorld-v0", "--workers", "1", "--quiet"]) == 0
    assert "already trained" in capsys.readouterr().out

    # Another recipe retrains from scratch: it must not resume the old recipe's checkpoints.
    from wmgym.envs.textworld.env import TextWorldEnv

    monkeypatch.setattr(TextWorldEnv, "default_twin", {**MINI, "sft": {**MINI["sft"], "max_steps": 4}})
    changed = default.recipe_for("TextWorld-v0")
    assert changed.key() != mini_recipe.key()
    assert main(["train", "default", "--env", "TextWorld-v0", "--workers", "1", "--quiet"]) == 0
    meta = json.loads((model_dir / "wmgym.json").read_text())
    assert meta["recipe_key"] == changed.key() and meta["sft"]["steps"] == 4 and meta["sft"]["resumed_from"] is None


def test_recipe_for_rejects_twins_and_unknown_ids():
    with pytest.raises(ValueError, match="twin"):
        default.recipe_for("WM-TextWorld-v0")
    with pytest.raises(gym.error.Error):
        default.recipe_for("NoSuchEnv-v0")
    generic = default.recipe_for("SciWorld-v0") if "SciWorld-v0" in gym.registry else None
    assert generic is None or generic.env == "SciWorld-v0"


def test_a_new_init_context_wording_means_new_data_and_a_new_twin(monkeypatch):
    """Bumping an env's ``context_version`` moves its default to another data folder and recipe key, so
    episodes worded the old way are neither reused nor the twin trained on them kept."""
    from wmgym.envs.textworld.env import TextWorldEnv

    key, paths = default.recipe_for("TextWorld-v0").key(), default.data_paths("TextWorld-v0")
    current = TextWorldEnv.context_version
    monkeypatch.setattr(TextWorldEnv, "context_version", current + 1)
    assert default.recipe_for("TextWorld-v0").key() != key
    assert default.data_paths("TextWorld-v0")[0].parent != paths[0].parent
    monkeypatch.setattr(TextWorldEnv, "context_version", current)
    assert (default.recipe_for("TextWorld-v0").key(), default.data_paths("TextWorld-v0")) == (key, paths)


def test_train_default_all_covers_every_real_env_and_needs_one_target():
    from wmgym.cli import main
    from wmgym.cli.train import default_envs
    from wmgym.envs import TWIN_PREFIX, registered_ids

    real = [e for e in registered_ids() if not e.startswith(TWIN_PREFIX)]
    assert default_envs() == real and {"TextWorld-v0", "ALFWorld-v0", "SciWorld-v0", "WebShop-v0"} <= set(real)
    for argv in (["train", "default"], ["train", "default", "--all", "--env", "TextWorld-v0"]):
        with pytest.raises(SystemExit, match="one of --env ID or --all"):
            main(argv)
