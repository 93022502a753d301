"""``wmgym quickstart`` end to end in miniature: collect both envs, train both twins in parallel processes,
report EM on the held-out games, play a twin beside the real env; a second run reuses everything."""

from __future__ import annotations

import json
import re

import pytest

from wmgym.training import default
from wmgym.worldmodels.loading import default_model_dir

ENVS = ["TextWorld-v0", "ALFWorld-v0"]


@pytest.fixture
def mini_recipes(tmp_path, monkeypatch):
    recipes = {env: {"train": [["expert", 2], ["random", 1]], "test": [["expert", 1]], "max_steps": 6,
                     "sft": {"preset": "tiny-s", "max_steps": 4, "batch_tokens": 2048, "eval_steps": 2,
                             "save_steps": 2, "lr": 3e-3, "curriculum": 0.25}}
               for env in ENVS}
    path = tmp_path / "recipes.json"
    path.write_text(json.dumps(recipes))
    monkeypatch.setenv("WMGYM_RECIPES", str(path))  # read by the training subprocesses too
    return recipes


@pytest.mark.slow
def test_quickstart_runs_the_whole_loop_and_reuses_its_cache(mini_recipes, capsys):
    from wmgym.cli import main

    assert main(["quickstart", "--envs", *ENVS]) == 0
    out = capsys.readouterr().out
    for env in ENVS:
        meta = json.loads((default_model_dir(env) / "wmgym.json").read_text())
        assert meta["recipe_key"] == default.recipe_for(env).key() and meta["sft"]["steps"] == 4
        assert f"{env:14s} EM {meta['test']['em']:.1%}" in out
        curve = default.em_curve(meta)  # EM against training tokens, from the evaluations during training
        assert [step for step, _, _ in curve] == [2, 4] and curve[0][1] < curve[1][1]
        assert "EM against SFT tokens (first 1 held-out episodes" in out
        assert ", ".join(f"{t / 1e6:.1f}M {em:.1%}" for _, t, em in curve) in out
        assert f"=== {env}, " in out and "real env (R) vs twin (T)" in out
        train_path, _ = default.data_paths(env)
        assert sum(1 for _ in open(train_path)) == 3
    assert "=== ALFWorld-v0, valid_unseen game 0" in out
    assert "[1] > " in out and "R: " in out
    # The side-by-side episode ends with whether the real env and the twin won, for each env.
    ending = (r"(won in \d+ steps|did not win \((lost|stopped by the step limit) at step \d+\)"
              r"|did not win \(still going after \d+ steps\))")
    results = re.findall(rf"^result: real env {ending}; twin {ending} \(\d+ of \d+ observations the same\)$",
                         out, re.M)
    assert len(results) == len(ENVS), out[-3000:]

    assert main(["quickstart", "--envs", *ENVS]) == 0
    out = capsys.readouterr().out
    assert out.count("already trained") == 2 and "wrote 0 new" not in out.replace("wrote 0 new episode", "")


def test_side_by_side_result_says_who_won():
    from wmgym.training.quickstart import _ending

    assert _ending((5, True, False), 5) == "won in 5 steps"
    assert _ending((3, False, False), 3) == "did not win (lost at step 3)"
    assert _ending((20, False, True), 20) == "did not win (stopped by the step limit at step 20)"
    assert _ending(None, 12) == "did not win (still going after 12 steps)"


def test_recipe_override_file(tmp_path, monkeypatch):
    path = tmp_path / "r.json"
    path.write_text(json.dumps({"TextWorld-v0": {"train": [["expert", 1]], "sft": {"max_steps": 1}}}))
    declared = default.recipe_for("ALFWorld-v0")
    monkeypatch.setenv("WMGYM_RECIPES", str(path))
    r = default.recipe_for("TextWorld-v0")
    assert r.train == [("expert", 1)] and r.test == default.GENERIC["test"] and r.sft == {"max_steps": 1}
    assert default.recipe_for("ALFWorld-v0") == declared  # not in the file: unchanged
    path.write_text("{not json")
    with pytest.raises(ValueError, match="WMGYM_RECIPES"):
        default.recipe_for("TextWorld-v0")
