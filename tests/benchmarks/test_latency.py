"""The latency benchmark runs end to end on a tiny model and writes its JSON and Markdown."""

from __future__ import annotations

import json

import pytest

from wmgym.benchmarks.latency import LatencyConfig, run


@pytest.mark.slow
def test_latency_benchmark_smoke(tiny_model_dir, tmp_path):
    cfg = LatencyConfig(model=str(tiny_model_dir), probes=(0, 1, 2), episodes=1, window=1, max_new_tokens=4,
                        batch_sizes=(1, 2), batch_steps=1)
    results = run(cfg, out=str(tmp_path / "run"), argv=["test"])
    data = json.loads((tmp_path / "run" / "result.json").read_text())
    assert data["benchmark"] == "latency" and (tmp_path / "run" / "report.md").is_file()
    history = data["results"]["history"]
    for setting in ("on", "off"):
        assert set(history[setting]) == {"0", "1", "2"}
        assert all(cell["ms"] > 0 and cell["new_tokens"] == 4 for cell in history[setting].values())
    # The prompt grows with the history; cache reuse does not change what is fed, only what is recomputed.
    assert history["on"]["2"]["prompt_tokens"] > history["on"]["1"]["prompt_tokens"]
    assert set(results["batch"]) == {"1", "2"} and results["batch"]["2"]["speedup"] > 0
    assert results["ms_per_token_ratio_last_to_first_with_reuse"] > 0
    assert (tmp_path / "run" / "latency.png").is_file()
