"""TextWorld-v0 plays the user's own game files (made here with ``tw-make``), and its twin does too."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import gymnasium as gym
import pytest
from gymnasium.utils.env_checker import check_env

from wm_fakes import EchoRule, FakeWorldModel

SECTIONS = ("Rooms (as look shows them at the start):", "Things (as examine shows them at the start):",
            "Map (where each way out of a room leads):", "Scoring:")


@pytest.fixture(scope="module")
def games(tmp_path_factory) -> list[Path]:
    """Two tiny games made by TextWorld's own command line, as a user would make them."""
    folder = tmp_path_factory.mktemp("user-games")
    paths = []
    for seed in (1, 2):
        path = folder / f"g{seed}.z8"
        subprocess.run(["tw-make", "custom", "--world-size", "2", "--nb-objects", "3", "--quest-length", "2",
                        "--seed", str(seed), "--output", str(path), "--silent"], check=True, timeout=300)
        paths.append(path)
    return paths


def _expert_wins(env: gym.Env, **reset) -> bool:
    env.reset(seed=0, **reset)
    for _ in range(20):
        _, _, terminated, truncated, info = env.step(env.unwrapped.expert_action())
        if terminated or truncated:
            return bool(info["won"])
    return False


def test_tw_make_writes_the_files_the_env_reads(games):
    for path in games:
        assert path.with_suffix(".json").is_file() and path.with_suffix(".ni").is_file()


def test_user_games_play_with_context_and_expert(games):
    env = gym.make("TextWorld-v0", game_files=[str(g) for g in games])
    assert env.unwrapped.splits == ("user",) and env.unwrapped.num_games() == 2
    contexts = []
    for k, path in enumerate(games):
        obs, info = env.reset(seed=0, options={"game": k})
        assert info["game_id"] == f"user/{k:05d}" and info["split"] == "user"
        assert info["game_file"] == str(path.resolve())
        assert all(section in info["init_context"] for section in SECTIONS)
        assert info["init_context"].rstrip().endswith(obs)
        contexts.append(info["init_context"])
        assert _expert_wins(env, options={"game": k})
    assert contexts[0] != contexts[1]  # options={"game": 1} picked the second game
    env.close()


def test_user_games_pass_check_env(games):
    env = gym.make("TextWorld-v0", game_files=games)
    check_env(env.unwrapped, skip_render_check=True)
    env.close()


def test_bad_game_files_name_the_problem(games, tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.z8"):
        gym.make("TextWorld-v0", game_files=[tmp_path / "nope.z8"])
    with pytest.raises(ValueError, match=r"valid suffixes: \['.z8', '.ulx'\]"):
        gym.make("TextWorld-v0", game_files=[games[0].with_suffix(".json")])
    with pytest.raises(ValueError, match="holds no games"):
        gym.make("TextWorld-v0", game_files=[])
    lone = tmp_path / "lone.z8"
    shutil.copy(games[0], lone)
    with pytest.raises(FileNotFoundError, match="lone.json is missing"):
        gym.make("TextWorld-v0", game_files=[lone])
    env = gym.make("TextWorld-v0", game_files=games)
    with pytest.raises(ValueError, match=r"valid splits: \['user'\]"):
        env.reset(options={"split": "train"})
    with pytest.raises(ValueError, match="out of range"):
        env.reset(options={"game": 2})
    env.close()
    with pytest.raises(ValueError, match=r"valid splits: \['user'\]"):
        gym.make("TextWorld-v0", game_files=games, split="train")


def test_missing_source_and_glulx_give_the_same_game(games, tmp_path):
    """Without the .ni the context is rebuilt from the .json; a .ulx is played compiled from its .json."""
    env = gym.make("TextWorld-v0", game_files=games[:1])
    obs, info = env.reset(seed=0)
    env.close()
    bare, glulx = tmp_path / "bare.z8", tmp_path / "old.ulx"
    shutil.copy(games[0], bare)
    shutil.copy(games[0].with_suffix(".json"), bare.with_suffix(".json"))
    shutil.copy(games[0].with_suffix(".json"), glulx.with_suffix(".json"))
    glulx.write_bytes(b"Glul")  # TextWorld plays no Glulx: the game comes from the .json beside it
    for path in (bare, glulx):
        other = gym.make("TextWorld-v0", game_files=[path])
        o, i = other.reset(seed=0)
        assert (o, i["init_context"]) == (obs, info["init_context"])
        assert _expert_wins(other)
        other.close()


def test_twin_plays_user_games(games):
    real = gym.make("TextWorld-v0", game_files=games)
    twin = gym.make("WM-TextWorld-v0", model=FakeWorldModel(EchoRule()), game_files=games)
    assert twin.unwrapped.splits == ("user",)
    r_obs, r_info = real.reset(seed=3, options={"game": 1})
    t_obs, t_info = twin.reset(seed=3, options={"game": 1})
    assert t_obs == r_obs and t_info["init_context"] == r_info["init_context"]
    assert t_info["game_file"] == str(games[1].resolve())
    assert twin.step("go north")[0] == "You go north."
    twin.close()
    real.close()
