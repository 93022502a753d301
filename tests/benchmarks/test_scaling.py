"""Scaling benchmark end to end: two data sizes, tiny models trained a few steps with the SFT API."""

from __future__ import annotations

import json

import pytest

from bench_checks import check_run_folder

pytestmark = pytest.mark.slow


def test_scaling_trains_and_scores_each_point(tmp_path, textworld_gold_file):
    pytest.importorskip("wmgym.training.sft")
    from wmgym.benchmarks import scaling

    out, work = tmp_path / "scal", tmp_path / "work"
    args = ["--sizes", "1,2", "--presets", "tiny-s", "--max-steps", "2", "--eval-episodes", "2",
            "--train-trajectories", textworld_gold_file, "--eval-trajectories", textworld_gold_file,
            "--max-new-tokens", "16", "--work-dir", str(work), "--out", str(out)]
    assert scaling.main(args) == 0
    data = check_run_folder(out, "scaling")
    points = data["results"]["points"]
    assert [(p["preset"], p["trajectories"]) for p in points] == [("tiny-s", 1), ("tiny-s", 2)]
    for p in points:
        assert p["sft_steps"] == 2 and p["sft_parameters"] > 0
        assert 0.0 <= p["em"] <= 1.0 and p["eval_steps"] == data["results"]["gold_steps"]
        assert (work / "runs").joinpath(p["model_dir"].split("/")[-1], "config.json").exists()
    # A second run reuses the trained models instead of training again.
    before = {p["model_dir"]: json.loads((tmp_path / "work" / "runs" / p["model_dir"].split("/")[-1] /
                                          "scaling_summary.json").read_text()) for p in points}
    assert scaling.main(args[:-1] + [str(tmp_path / "scal2")]) == 0
    again = json.loads((tmp_path / "scal2" / "result.json").read_text())["results"]["points"]
    assert [p["em"] for p in again] == [p["em"] for p in points]
    assert all(before[p["model_dir"]]["wall_s"] == p["sft_wall_s"] for p in again)


def test_scaling_config_names_bad_values():
    pytest.importorskip("wmgym.training.sft")
    from wmgym.benchmarks.scaling import ScalingConfig

    with pytest.raises(ValueError, match="sizes must be positive"):
        ScalingConfig(sizes=[0])
    with pytest.raises(ValueError, match="tiny-xl"):
        ScalingConfig(presets=["tiny-xl"])
