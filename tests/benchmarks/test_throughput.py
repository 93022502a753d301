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
                            "--twin-batch", "1,3", "--twin-steps", "2", "--max-new-tokens", "16",
                            "--out", str(out)]) == 0
    data = check_run_folder(out, "throughput")
    real, twins = data["results"]["real"], data["results"]["twins"]
    assert real["steps_per_s_1_worker"] > 0 and real["steps_per_s_vector_2"] > 0
    assert real["generation_s_per_game"] is None
    assert data["results"]["matmul_flops"] > 1e8
    hf = twins["hf"]
    assert hf["single_env"]["steps_per_s"] > 0
    for n in (1, 3):
        cell = hf[f"make_vec_{n}"]
        assert cell["steps_per_s"] > 0 and 0 < cell["mean_new_tokens"] <= 16 and cell["tokens_per_s"] > 0
        # The arithmetic limit is far above what per-token overhead leaves (a 0.1M-parameter model).
        assert cell["arithmetic_limit_tokens_per_s"] > cell["tokens_per_s"]
    try:
        import vllm  # noqa: F401
    except ImportError:
        assert "pip install wmgym[gpu]" in twins["vllm"]["skipped"]


def test_vector_measure_resets_prepared_games_inside_the_timing(wmgym_home):
    """Rows that end are reset onto the prepared games (no autoreset onto unprepared ones) and keep stepping."""
    import gymnasium as gym
    from wm_fakes import EchoRule, FakeWorldModel

    from wmgym.benchmarks import throughput

    vec = gym.make_vec("WM-TextWorld-v0", num_envs=2, model=FakeWorldModel(EchoRule()), max_episode_steps=2,
                       autoreset_mode="Disabled")
    resets = []
    original = vec.reset
    vec.reset = lambda **kw: resets.append(kw.get("options")) or original(**kw)
    assert throughput.measure_vector(vec, steps=4, n_games=1) > 0
    assert len(resets) == 4 and all(o["game"] == 0 for o in resets)  # warm-up, start, two ends of both rows
    assert "reset_mask" not in resets[1] and resets[2]["reset_mask"].tolist() == [True, True]


def test_throughput_rejects_bad_counts():
    from wmgym.benchmarks import throughput

    with pytest.raises(ValueError, match="--vector"):
        throughput.main(["--vector", "0"])
    with pytest.raises(ValueError, match="--twin-batch"):
        throughput.main(["--twin-batch", "0,8"])
