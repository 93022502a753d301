"""`wmgym synth`: an agent played in a twin, its episodes written as synthetic trajectories, --keep won, resume.

The twin is the suite's tiny world model that memorised the expert's real episodes of TextWorld games 0 and 2.
The scripted agent plays game 0 as the expert does (one step: the twin plays it back, won); on the game it never
saw (1) the twin's answers are not won, so a run holds both kinds. Whatever the twin judges, ``--keep won`` must
keep exactly the episodes that a ``--keep all`` run of the same indices has won.
"""

from __future__ import annotations

import json
import subprocess
import sys

import gymnasium as gym
import pytest

from wmgym.training.synth import SynthConfig, done_indices, dropped_path, synth
from wmgym.training.trajectories import read_episodes

MAX_STEPS = 2


@pytest.fixture(scope="module")
def memorised_twin(trained_textworld_model_dir):
    """The suite's tiny world model that memorised the expert's episodes of TextWorld games 0 and 2."""
    return trained_textworld_model_dir


def _cfg(path, out, **kw):
    base = dict(env="WM-TextWorld-v0", agent="scripted", episodes=3, out=str(out), model=str(path),
                max_steps=MAX_STEPS, progress=False)
    return SynthConfig(**{**base, **kw})


def test_synth_writes_tagged_episodes_and_keep_won_keeps_the_won(memorised_twin, tmp_path):
    every, won = tmp_path / "all.jsonl", tmp_path / "won.jsonl"
    counts = synth(_cfg(memorised_twin, every))
    assert counts["played"] == counts["kept"] == 3
    eps = {ep.index: ep for ep in read_episodes(every)}
    assert sorted(eps) == [0, 1, 2]
    for ep in eps.values():
        assert ep.synthetic and ep.world_model == str(memorised_twin.resolve())
        assert ep.env_id == "WM-TextWorld-v0" and ep.policy == "scripted" and ep.split == "train"
    assert eps[0].won  # the memorised game plays back as it really went
    assert not all(ep.won for ep in eps.values())
    assert eps[0].steps[0].action == "eat licorice strip"

    counts = synth(_cfg(memorised_twin, won, keep="won"))
    kept = {ep.index for ep in read_episodes(won)}
    assert kept == {i for i, ep in eps.items() if ep.won} and 0 in kept and len(kept) < 3
    assert counts == {"played": 3, "kept": len(kept), "won": len(kept)}
    dropped = [json.loads(line) for line in dropped_path(won).read_text().splitlines()]
    assert {d["index"] for d in dropped} == {0, 1, 2} - kept
    # Resuming: nothing left to play, the dropped ones included; more episodes play only the new indices.
    assert synth(_cfg(memorised_twin, won, keep="won"))["played"] == 0
    assert synth(_cfg(memorised_twin, won, keep="won", episodes=4))["played"] == 1
    assert done_indices(_cfg(memorised_twin, won, keep="won", episodes=4)) == {0, 1, 2, 3}


def test_resume_after_a_torn_line_has_no_loss_or_duplicates(memorised_twin, tmp_path):
    out = tmp_path / "s.jsonl"
    synth(_cfg(memorised_twin, out, episodes=2))
    with open(out, "a") as f:  # what a kill -9 mid-write leaves: half a line
        f.write('{"env_id": "WM-TextWorld-v0", "game_id": "tr')
    # Another world model's episodes are another run: not skipped.
    assert done_indices(_cfg(memorised_twin.parent, out)) == set()
    assert synth(_cfg(memorised_twin, out, episodes=3))["played"] == 1
    assert sorted(ep.index for ep in read_episodes(out)) == [0, 1, 2]
    assert out.read_bytes().endswith(b"\n")


def test_show_prints_a_synthetic_episode(memorised_twin, tmp_path):
    out = tmp_path / "s.jsonl"
    synth(_cfg(memorised_twin, out, episodes=1))
    shown = subprocess.run([sys.executable, "-m", "wmgym.cli", "show", str(out)], capture_output=True, text=True,
                           check=True).stdout
    assert "synthetic: played in the twin" in shown and "eat licorice strip" in shown and "WON" in shown


def test_synth_refuses_real_ids_engine_agents_and_bad_keep(tmp_path):
    with pytest.raises(ValueError, match="synth plays a twin.*WM-TextWorld-v0"):
        SynthConfig(env="TextWorld-v0", out=str(tmp_path / "x.jsonl"))
    with pytest.raises(ValueError, match="reads the engine"):
        SynthConfig(env="WM-TextWorld-v0", agent="expert", out=str(tmp_path / "x.jsonl"))
    with pytest.raises(ValueError, match="valid: \\['all', 'won'\\]"):
        SynthConfig(env="WM-TextWorld-v0", keep="best", out=str(tmp_path / "x.jsonl"))
    with pytest.raises(gym.error.Error):
        SynthConfig(env="WM-Nope-v0", out=str(tmp_path / "x.jsonl"))


def test_the_format_tags_synthetic_episodes_only():
    from wmgym.training.trajectories import Episode

    real = Episode(env_id="TextWorld-v0", game_id="g", seed=0, split="train", policy="expert", init_context="c",
                   task="t", initial_observation="o")
    assert "synthetic" not in json.loads(real.to_json()) and "world_model" not in json.loads(real.to_json())
    fake = Episode(**{**json.loads(real.to_json()), "env_id": "WM-TextWorld-v0"}, synthetic=True, world_model="m")
    back = Episode.from_dict(json.loads(fake.to_json()))
    assert back.synthetic and back.world_model == "m"
    with pytest.raises(ValueError, match="'synthetic' must be true or false"):
        Episode.from_dict({**json.loads(fake.to_json()), "synthetic": "yes"})


def test_cli_synth_runs_and_names_bad_input(memorised_twin, tmp_path, capsys):
    from wmgym.cli import main

    out = tmp_path / "cli.jsonl"
    assert main(["synth", "--env", "WM-TextWorld-v0", "--agent", "scripted", "--episodes", "1", "--out", str(out),
                 "--model", str(memorised_twin), "--max-steps", "2", "--keep", "won", "--quiet"]) == 0
    assert "the twin judged 1 won; wrote 1" in capsys.readouterr().out
    assert [ep.index for ep in read_episodes(out)] == [0]
    assert main(["synth", "--env", "TextWorld-v0", "--out", str(out)]) == 2
    assert "synth plays a twin" in capsys.readouterr().err
