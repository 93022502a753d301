"""bench finetune: a pretrained model (a tiny local HF directory here) fine-tuned at a wall-clock budget."""

from __future__ import annotations

import json

import pytest

from wmgym.benchmarks.finetune import FinetuneConfig


@pytest.mark.parametrize("kwargs, match", [
    ({}, "give --model"),
    ({"model": "m", "modes": ["qlora"]}, "unknown modes"),
    ({"model": "m", "minutes": 0}, "minutes must be > 0"),
])
def test_bad_config_is_a_clear_error(kwargs, match):
    with pytest.raises(ValueError, match=match):
        FinetuneConfig(**kwargs)


def test_lora_and_full_runs_stop_at_the_budget_and_report_em_against_tokens(tmp_path, tiny_model_dir,
                                                                            textworld_gold_file):
    from wmgym.benchmarks.finetune import run

    cfg = FinetuneConfig(model=str(tiny_model_dir), envs=["TextWorld-v0"], minutes=0.05, max_steps=100000,
                         eval_steps=2, eval_em_episodes=2, batch_tokens=4096, max_length=4096,
                         data={"TextWorld-v0": [textworld_gold_file, textworld_gold_file]}, compare_default=False)
    out = tmp_path / "ft"
    run(cfg, out=str(out), argv=["wmgym", "bench", "finetune", "(test)"])
    data = json.loads((out / "result.json").read_text())
    runs = data["results"]["envs"]["TextWorld-v0"]["runs"]
    assert set(runs) == {"lora", "full"}
    for r in runs.values():
        assert 1 <= r["steps"] == r["stopped_by_time_at_step"] < 100000, "stopped by the budget, not the steps"
        assert 0.0 <= r["em"] <= 1.0 and r["tokens"] > 0
        assert [c["step"] for c in r["em_against_tokens"]][-1] == r["steps"]
        tokens = [c["tokens"] for c in r["em_against_tokens"]]
        assert tokens == sorted(tokens)
    assert "EM against tokens" in (out / "report.md").read_text()
    # read back, not retrained
    before = (out / "runs" / "TextWorld-v0-lora" / "sft_summary.json").stat().st_mtime
    run(cfg, out=str(out), argv=["wmgym", "bench", "finetune", "(test)"])
    assert (out / "runs" / "TextWorld-v0-lora" / "sft_summary.json").stat().st_mtime == before


def test_the_tiny_default_is_scored_on_the_episodes_sft_scores(monkeypatch, trained_textworld_model_dir,
                                                                textworld_gold_file):
    """The comparison row: the embedded default's teacher-forced EM on the same first held-out episodes."""
    from wmgym.benchmarks import finetune
    from wmgym.worldmodels import loading

    monkeypatch.setattr(loading, "default_model_dir", lambda env: trained_textworld_model_dir)
    cfg = FinetuneConfig(model="unused", eval_em_episodes=2,
                         data={"TextWorld-v0": [textworld_gold_file, textworld_gold_file]})
    r = finetune.default_em(cfg, "TextWorld-v0", textworld_gold_file, 2048)
    assert r is not None and r["model"] == str(trained_textworld_model_dir)
    assert r["steps"] > 0 and 0.0 < r["em"] <= 1.0
