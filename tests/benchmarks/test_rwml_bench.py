"""``wmgym bench rwml`` end to end on a tiny model: three arms, equal compute, JSON and Markdown written."""

from __future__ import annotations

import json

import pytest

from wmgym.training.trajectories import Episode, Step, TrajectoryWriter


def _write(path, games: list[int]) -> str:
    actions = ["open fridge", "go north", "take key from box", "inventory"]
    with TrajectoryWriter(path) as w:
        for g in games:
            w.write(Episode(env_id="TextWorld-v0", game_id=f"g{g}", seed=g, split="train", policy="expert",
                            init_context="You are in a kitchen. There is a fridge.", task="eat the apple",
                            initial_observation="You are in a kitchen.",
                            steps=[Step(actions[(g + t) % 4], "Nothing happens.", 0.0, False, False)
                                   for t in range(3)]))
    return str(path)


@pytest.mark.slow
def test_bench_rwml_compares_three_arms_at_equal_compute(tiny_model_dir, tmp_path):
    from wmgym.cli import main

    train = _write(tmp_path / "train.jsonl", [0, 1, 2])
    held = _write(tmp_path / "held.jsonl", [5, 6])
    out = tmp_path / "res"
    env = "TextWorld-v0"
    assert main(["bench", "rwml", "--env", env, "--model", f"{env}={tiny_model_dir}", "--train-data", f"{env}={train}",
                 "--eval-data", f"{env}={held}", "--train-transitions", "6", "--eval-transitions", "4", "--steps", "2",
                 "--prompts-per-step", "1", "--num-generations", "2", "--filter-samples", "2",
                 "--unpredictable-below", "0", "--out", str(out)]) == 0
    data = json.loads((out / "result.json").read_text())
    res = data["results"]["envs"][env]
    assert list(res["arms"]) == ["sft", "sft+rwml", "sft+grpo-em"]
    for arm in res["arms"].values():
        assert arm["transitions"] == 4
        for metric in ("em", "f1", "similarity"):
            assert 0.0 <= arm[metric] <= 1.0
    rwml, em = res["arms"]["sft+rwml"]["training"], res["arms"]["sft+grpo-em"]["training"]
    assert rwml["reward"] == "binary" and em["reward"] == "em"
    # equal compute: the same GRPO steps and sampled completions, from the same pre-pass
    assert rwml["steps"] == em["steps"] == 2 and rwml["completions_sampled"] == em["completions_sampled"] == 4
    assert rwml["prepass_transitions"] == em["prepass_transitions"] == 6
    assert 0.0 <= rwml["effective_share_before"] <= 1.0 and len(rwml["history"]) == 2
    report = (out / "report.md").read_text()
    assert "sft+rwml" in report and "effective" in report and data["metadata"]["command"].startswith("wmgym bench rwml")


def test_bench_rwml_refuses_a_missing_model_and_bad_pairs(tmp_path, capsys):
    from wmgym.cli import main

    assert main(["bench", "rwml", "--env", "TextWorld-v0", "--model", f"TextWorld-v0={tmp_path}", "--out",
                 str(tmp_path / "r")]) == 2
    assert "wmgym train default --env TextWorld-v0" in capsys.readouterr().err
    assert main(["bench", "rwml", "--model", str(tmp_path), "--out", str(tmp_path / "r")]) == 2
    assert "ENV=PATH" in capsys.readouterr().err
