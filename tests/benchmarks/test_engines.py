"""The engine-speed benchmarks: ``wmgym bench engine --env ID`` finds the env's declared one; the SciWorld one on
one tiny game (three configurations, same actions, JSON + Markdown + plot)."""

from __future__ import annotations

import json

import pytest

from wmgym.benchmarks.engines import sciworld
from wmgym.envs.sciworld import env as sciworld_env


@pytest.mark.java
@pytest.mark.slow
def test_sciworld_benchmark_writes_its_report(tmp_path):
    assert sciworld.main(["--tasks", "lifespan-longest-lived", "--steps", "3", "--out", str(tmp_path)]) == 0
    data = json.loads((tmp_path / "result.json").read_text())
    totals = data["results"]["totals"]
    assert set(totals) == set(sciworld.CONFIGS)
    assert all(t["steps"] == 3 and t["steps_per_s"] > 0 for t in totals.values())
    assert totals["package"]["speedup_vs_package"] == pytest.approx(1.0)
    assert data["results"]["games"][0]["game"] == "test/lifespan-longest-lived/93"
    assert data["metadata"]["context_versions"] == {"SciWorld-v0": sciworld_env.SciWorldEnv.context_version}
    assert "vs package" in (tmp_path / "report.md").read_text() and (tmp_path / "steps_per_s.png").exists()


def test_bench_engine_runs_the_benchmark_the_env_declares(monkeypatch, capsys):
    from wmgym.benchmarks.engines import alfworld
    from wmgym.cli import main

    seen = []
    monkeypatch.setattr(alfworld, "main", lambda argv: seen.append(argv) or 0)
    assert main(["bench", "engine", "--env", "ALFWorld-v0", "--steps", "3"]) == 0
    assert seen == [["--steps", "3"]]
    assert main(["bench", "engine", "--env", "TextWorld-v0"]) == 2  # declares none: an error naming those that do
    err = capsys.readouterr().err
    assert "TextWorld-v0 declares no engine benchmark" in err and "'ALFWorld-v0', 'SciWorld-v0'" in err
    assert main(["bench", "engine", "--help"]) == 0
    assert "wmgym.benchmarks.engines.sciworld:main" in capsys.readouterr().out


def test_bench_engine_tells_a_shared_benchmark_which_id_it_runs(tmp_path):
    """Tau2's three ids declare one engine benchmark: `--env Tau2-Telecom-v0` runs that domain alone."""
    pytest.importorskip("tau2")
    from wmgym.cli import main

    assert main(["bench", "engine", "--env", "Tau2-Telecom-v0", "--tasks", "2", "--out", str(tmp_path)]) == 0
    data = json.loads((tmp_path / "result.json").read_text())
    assert list(data["results"]) == ["Tau2-Telecom-v0"]
    assert data["results"]["Tau2-Telecom-v0"]["expert_wins_all"][1] > 0
