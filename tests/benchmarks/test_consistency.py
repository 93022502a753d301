"""Consistency benchmark end to end: real TextWorld games, a tiny trained twin, scripted and random agents."""

from __future__ import annotations

import pytest

from bench_checks import check_run_folder

pytestmark = pytest.mark.slow


def test_consistency_table_and_anchoring(tmp_path, trained_textworld_model_dir):
    from wmgym.benchmarks import consistency

    out = tmp_path / "cons"
    # Train games 0 and 2 are the ones the twin memorised (1 and 5 expert steps).
    assert consistency.main(["--split", "train", "--game-list", "0,2", "--agents", "scripted,random",
                             "--max-steps", "6", "--anchoring", "1,3", "--model", str(trained_textworld_model_dir),
                             "--wm-arg", "max_new_tokens=96", "--out", str(out)]) == 0
    data = check_run_folder(out, "consistency")
    env = data["results"]["envs"]["TextWorld-v0"]
    assert env["games"] == 2 and env["published_7b_cr"] == 0.92
    scripted = env["agents"]["scripted"]
    for key in ("real", "wm", "w2r"):
        assert scripted[key]["n"] == 2
    assert scripted["real"]["wins"] == 2  # the scripted agent solves both games in the real env
    g0 = next(g for g in scripted["games"] if g["game"] == 0)
    # Game 0 is "eat the licorice strip": the twin predicts the winning turn, and replaying it wins for real.
    assert g0["wm_won"] and g0["w2r_won"] and g0["first_divergence"] is None
    assert scripted["cr"] == pytest.approx(scripted["w2r"]["rate"] / scripted["real"]["rate"])
    for spec, a in env["agents"].items():
        if a["real"]["wins"] == 0:
            assert a["cr"] is None and "Real = 0" in a["cr_note"]
    study = data["results"]["anchoring"]["TextWorld-v0"]["scripted"]
    assert [r["every"] for r in study] == [None, 1, 3]
    every1 = study[1]
    assert every1["anchors"] == every1["steps"] > 0  # every step anchored
    assert 0.0 <= every1["agreement"] <= 1.0
    report = (out / "report.md").read_text()
    assert "| TextWorld-v0 | scripted | 100.0% (2/2) |" in report and "Anchoring study" in report


def test_cli_runs_consistency(tmp_path, trained_textworld_model_dir):
    from wmgym.cli import main

    out = tmp_path / "cli"
    assert main(["bench", "consistency", "--split", "train", "--game-list", "0", "--agents", "scripted:0.5",
                 "--model", str(trained_textworld_model_dir), "--wm-arg", "max_new_tokens=64",
                 "--max-steps", "3", "--out", str(out)]) == 0
    data = check_run_folder(out, "consistency")
    assert data["metadata"]["command"].startswith("wmgym bench consistency")
    assert "scripted:0.5" in data["results"]["envs"]["TextWorld-v0"]["agents"]


@pytest.mark.slow
def test_alfworld_agents_real_success_spread(tmp_path):
    from wmgym.benchmarks import consistency

    out = tmp_path / "alf"
    assert consistency.main(["--env", "ALFWorld-v0", "--real-only", "--games", "3", "--agents",
                             "scripted,scripted:0.5,random", "--out", str(out)]) == 0
    data = check_run_folder(out, "consistency")
    env = data["results"]["envs"]["ALFWorld-v0"]
    assert env["split"] == "valid_unseen"
    agents = env["agents"]
    # Pick-and-place, look-at-under-lamp and clean-then-place: the scripted agent solves all three.
    assert agents["scripted"]["real"] == {"rate": 1.0, "wins": 3, "n": 3}
    assert agents["random"]["real"]["wins"] <= agents["scripted:0.5"]["real"]["wins"] <= 3
    assert all(a["wm"] is None and a["cr"] is None for a in agents.values())


@pytest.mark.slow
def test_react_with_a_local_model_plays_real_env_and_twin(tmp_path, trained_textworld_model_dir):
    from wmgym.benchmarks import consistency

    out = tmp_path / "react-local"
    assert consistency.main(["--split", "train", "--game-list", "0", "--agents", "react", "--max-steps", "2",
                             "--agent-model", str(trained_textworld_model_dir), "--agent-arg", "max_tokens=12",
                             "--model", str(trained_textworld_model_dir), "--wm-arg", "max_new_tokens=32",
                             "--out", str(out)]) == 0
    react = check_run_folder(out, "consistency")["results"]["envs"]["TextWorld-v0"]["agents"]["react"]
    assert react["real"]["n"] == react["wm"]["n"] == react["w2r"]["n"] == 1
