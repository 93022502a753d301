"""The SciWorld speed benchmark on one tiny game: three configurations, same actions, JSON + Markdown + plot."""

from __future__ import annotations

import json

import pytest

from wmgym.benchmarks import sciworld


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
    assert "vs package" in (tmp_path / "report.md").read_text() and (tmp_path / "steps_per_s.png").exists()
