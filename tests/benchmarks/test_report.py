"""``wmgym bench report`` over real fidelity and consistency runs."""

from __future__ import annotations

import json

import pytest

from bench_checks import check_run_folder

pytestmark = pytest.mark.slow


def test_report_gathers_latest_runs_per_env(tmp_path, trained_textworld_model_dir, textworld_gold_file):
    from wmgym.benchmarks import consistency, fidelity
    from wmgym.cli import main

    root = tmp_path / "results"
    model = ["--model", str(trained_textworld_model_dir)]
    assert fidelity.main(["--trajectories", textworld_gold_file, *model, "--wm-arg", "max_new_tokens=160",
                          "--out", str(root / "fidelity" / "a")]) == 0
    assert consistency.main(["--split", "train", "--game-list", "0", "--agents", "scripted", "--max-steps", "2",
                             *model, "--wm-arg", "max_new_tokens=64", "--out", str(root / "consistency" / "a")]) == 0
    assert consistency.main(["--env", "ALFWorld-v0", "--real-only", "--games", "1", "--agents", "scripted",
                             "--out", str(root / "consistency" / "b")]) == 0
    assert main(["bench", "report", "--results", str(root)]) == 0
    out = root / "report" / "latest"
    data = check_run_folder(out, "report")
    fid = json.loads((root / "fidelity" / "a" / "result.json").read_text())["results"]["envs"]["TextWorld-v0"]
    assert data["results"]["em"]["TextWorld-v0"] == fid["em"]
    cons = json.loads((root / "consistency" / "a" / "result.json").read_text())
    assert data["results"]["cr"]["TextWorld-v0"] == cons["results"]["envs"]["TextWorld-v0"]["pooled_cr"]
    assert "scaling" in data["results"]["missing"]
    page = (out / "report.md").read_text()
    assert "| TextWorld-v0 | " in page and "| 70.60 |" in page and "| 0.92 |" in page  # published beside ours
    assert "Not run yet: " in page and "wmgym bench scaling" in page
    assert "fidelity-a-em_per_step.png" in data["figures"]
    # The real-only run is shown as the agents' skill, not as ALFWorld's consistency.
    assert "ALFWorld-v0" not in data["results"]["cr"]
    assert "## Agents in the real envs" in page and "| ALFWorld-v0 | 100.0% (1/1) |" in page


def test_report_on_an_empty_results_root_lists_what_to_run(tmp_path):
    from wmgym.benchmarks import report

    assert report.main(["--results", str(tmp_path / "none"), "--out", str(tmp_path / "rep")]) == 0
    page = (tmp_path / "rep" / "report.md").read_text()
    assert "wmgym bench fidelity" in page and "wmgym bench consistency" in page
    assert "| ALFWorld-v0 | n/a | 99.87 | n/a | 0.96 |" in page
