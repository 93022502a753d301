"""Throughput benchmark end to end: real TextWorld and its twin (hf), vectorised, vllm reported as unavailable."""

from __future__ import annotations

import pytest

from bench_checks import check_run_folder

pytestmark = pytest.mark.slow


def test_throughput_real_and_twin(tmp_path, trained_textworld_model_dir):
    from wmgym.benchmarks import throughput

    out = tmp_path / "thr"
    assert throughput.main(["--steps", "10", "--games", "1", "--gen-games", "0", "--workers", "1", "--vector", "2",
                            "--model", str(trained_textworld_model_dir), "--backends", "hf,vllm",
                            "--twin-steps", "2", "--max-new-tokens", "16", "--out", str(out)]) == 0
    data = check_run_folder(out, "throughput")
    real, twins = data["results"]["real"], data["results"]["twins"]
    assert real["steps_per_s_1_worker"] > 0 and real["steps_per_s_vector_2"] > 0
    assert real["generation_s_per_game"] is None
    hf = twins["hf"]
    assert hf["steps_per_s"] > 0 and hf["vector_2_steps_per_s"] > 0 and hf["step_batch_2_steps_per_s"] > 0
    try:
        import vllm  # noqa: F401
    except ImportError:
        assert "pip install wmgym[gpu]" in twins["vllm"]["skipped"]


def test_throughput_rejects_bad_counts():
    from wmgym.benchmarks import throughput

    with pytest.raises(ValueError, match="--vector"):
        throughput.main(["--vector", "0"])
