"""Fidelity benchmark end to end: a tiny trained model on real TextWorld episodes."""

from __future__ import annotations

from collections import Counter

import pytest

from bench_checks import check_run_folder

pytestmark = pytest.mark.slow


def test_fidelity_scores_a_model_on_gold_episodes(tmp_path, trained_textworld_model_dir, textworld_gold_file,
                                                  textworld_expert_episodes):
    from wmgym.benchmarks import fidelity

    out = tmp_path / "fid"
    assert fidelity.main(["--trajectories", textworld_gold_file, "--model", str(trained_textworld_model_dir),
                          "--wm-arg", "max_new_tokens=160", "--out", str(out), "--batch", "2"]) == 0
    data = check_run_folder(out, "fidelity")
    tw = data["results"]["envs"]["TextWorld-v0"]
    n_steps = sum(len(e.steps) for e in textworld_expert_episodes)
    assert tw["steps"] == n_steps and tw["episodes"] == 2
    assert sum(v["steps"] for v in tw["per_step"].values()) == n_steps
    # Per action verb: every step counted once, under the verb of its gold action.
    verbs = Counter(st.action.split()[0] for e in textworld_expert_episodes for st in e.steps)
    assert {a: v["steps"] for a, v in tw["per_action"].items()} == verbs
    assert sum(v["exact"] for v in tw["per_action"].values()) == tw["exact"]
    assert "### TextWorld-v0 by action" in (out / "report.md").read_text()
    assert "first difference at word 0 / 1-4 / 5-19 / 20+" in (out / "report.md").read_text()
    for v in tw["per_action"].values():  # every wrong step is placed once
        assert sum(v["first_differences"]["at"].values()) == v["steps"] - v["exact"]
    # The model memorised these episodes: most predictions, markers included, are exact.
    assert tw["em"] >= 0.5 and tw["f1"] >= tw["em"]
    assert tw["published_7b_em"] == 70.60
    assert data["config"]["trajectories"] == [textworld_gold_file]


def test_fidelity_of_an_untrained_model_is_low_and_flags_parse_errors(tmp_path, tiny_model_dir, textworld_gold_file):
    from wmgym.benchmarks.fidelity import FidelityConfig, run
    from wmgym.worldmodels import load_world_model

    wm = load_world_model(tiny_model_dir, max_new_tokens=8)
    cfg = FidelityConfig(trajectories=[textworld_gold_file], episodes=2)
    bench = run(cfg, {"TextWorld-v0": wm}, out=str(tmp_path / "fid0"))
    tw = check_run_folder(bench.path, "fidelity")["results"]["envs"]["TextWorld-v0"]
    assert tw["em"] == 0.0 and tw["parse_errors"] == tw["steps"]  # 8 tokens never end a turn
    assert "first mismatches" in (bench.path / "report.md").read_text()


def test_summary_groups_steps_by_action_verb_most_frequent_first():
    from wmgym.benchmarks.fidelity import StepScore, action_kind, summarise

    def score(action, em):
        return StepScore("ALFWorld-v0", "expert", "g", 1, action, em, float(em), None, "p", "g")

    s = summarise([score("go to desk 1", False), score("go to bed 1", True), score("Take pen 1 from desk 1", True),
                   score("go to shelf 2", False)])
    assert list(s["per_action"]) == ["go", "take"]
    assert s["per_action"]["go"]["steps"] == 3 and s["per_action"]["go"]["exact"] == 1
    assert s["per_action"]["take"]["em"] == 1.0
    assert action_kind("  ") == "(empty)"


def test_summary_says_where_each_action_goes_wrong():
    from wmgym.benchmarks.fidelity import StepScore, summarise

    def score(action, pred, gold):
        return StepScore("TextWorld-v0", "expert", "g", 1, action, pred.strip() == gold.strip(), 0.0, None, pred, gold)

    room = "-= {} =-\nYou are in a {}. " + " ".join(["A plain room."] * 6)
    s = summarise([score("go north", room.format("Kitchen", "kitchen"), room.format("Pantry", "pantry")),
                   score("go south", room.format("Kitchen", "kitchen"), room.format("Garage", "garage")),
                   score("go east", room.format("Pantry", "pantry"), room.format("Pantry", "pantry")),
                   score("go west", room.format("Pantry", "kitchen"), room.format("Pantry", "pantry")),
                   score("go up", room.format("Pantry", "pantry") + "!", room.format("Pantry", "pantry")),
                   score("take key", "You take the key.", "You take the key.\n\nYour score has just gone up."),
                   score("take key", "Taken.", "You take the key.")])
    go, take = s["per_action"]["go"]["first_differences"], s["per_action"]["take"]["first_differences"]
    assert go["at"] == {"0": 0, "1-4": 2, "5-19": 1, "20+": 1}  # the exact step is not counted
    assert go["common"][0] == ["-=", "Pantry", "Kitchen", 1] and len(go["common"]) == 3
    assert take["at"] == {"0": 1, "1-4": 0, "5-19": 1, "20+": 0}
    assert ["", "You", "Taken", 1] in take["common"] and [".", "\n", "(end)", 1] in take["common"]


def test_fidelity_config_errors_name_the_bad_value():
    from wmgym.benchmarks.fidelity import FidelityConfig

    with pytest.raises(ValueError, match="episodes must be >= 1, got 0"):
        FidelityConfig(episodes=0)
    with pytest.raises(ValueError, match="--trajectories"):
        FidelityConfig(policies=[])
