"""Trajectory files: validation, atomic appends, torn-tail repair."""

from __future__ import annotations

import json

import pytest

from wmgym.training.trajectories import Episode, Step, TrajectoryWriter, load_episodes, read_episodes, repair


def _episode(i: int) -> Episode:
    return Episode(env_id="TextWorld-v0", game_id=f"train/{i:05d}", seed=i, split="train", policy="expert",
                   init_context="ctx", task="win", initial_observation="start", index=i,
                   steps=[Step("look", "a room", 0.0, False, False), Step("eat apple", "yum", 1.0, True, False)],
                   won=True)


def test_round_trip(tmp_path):
    path = tmp_path / "t.jsonl"
    with TrajectoryWriter(path) as w:
        for i in range(3):
            w.write(_episode(i))
    eps = load_episodes(path)
    assert [e.index for e in eps] == [0, 1, 2]
    assert eps[1] == _episode(1)


def test_torn_tail_is_skipped_and_repaired(tmp_path):
    path = tmp_path / "t.jsonl"
    with TrajectoryWriter(path) as w:
        w.write(_episode(0))
    with open(path, "a") as f:
        f.write(_episode(1).to_json()[:40])  # a writer killed mid-line
    assert len(list(read_episodes(path))) == 1
    assert repair(path) > 0
    assert path.read_text().endswith("\n")
    with TrajectoryWriter(path) as w:  # resuming appends after the last whole line
        w.write(_episode(2))
    assert [e.index for e in read_episodes(path)] == [0, 2]


def test_reader_names_the_bad_line(tmp_path):
    path = tmp_path / "t.jsonl"
    good = _episode(0).to_json()
    bad = json.loads(good)
    del bad["task"]
    path.write_text(good + "\n" + json.dumps(bad) + "\n")
    with pytest.raises(ValueError, match=r":2: .*missing keys \['task'\]"):
        list(read_episodes(path))
    assert len(list(read_episodes(path, strict=False))) == 1


def test_unknown_keys_rejected():
    data = json.loads(_episode(0).to_json())
    data["bogus"] = 1
    with pytest.raises(ValueError, match="unknown keys"):
        Episode.from_dict(data)


def test_format_field_defaults_for_old_lines_and_is_checked():
    """Lines written before episodes recorded their format read as "wmgym"; an unknown format is refused."""
    import json

    from wmgym.training.trajectories import Episode

    line = {"env_id": "TextWorld-v0", "game_id": "train/00000", "seed": 0, "split": "train", "policy": "expert",
            "init_context": "ctx", "task": "t", "initial_observation": "o", "steps": []}
    assert Episode.from_dict(line).format == "wmgym"
    assert json.loads(Episode.from_dict({**line, "format": "word2world"}).to_json())["format"] == "word2world"
    with pytest.raises(ValueError, match="valid formats"):
        Episode.from_dict({**line, "format": "agentgym"})
