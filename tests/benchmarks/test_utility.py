"""bench utility: every section end to end on the real TextWorld env with real (tiny) training, in miniature."""

from __future__ import annotations

import json

import pytest

from wmgym.benchmarks.utility import RL_ARMS, RWML_ARM, SFT_ARMS, UtilityConfig, pm, spread


def test_spread_and_cells():
    s = spread([0.25, 0.75])
    assert s["mean"] == 0.5 and s["min"] == 0.25 and s["max"] == 0.75 and s["n"] == 2
    assert abs(s["std"] - 0.3535533905932738) < 1e-12
    assert spread([0.4])["std"] == 0.0
    assert pm(s) == "50.0 ± 35.4 (n=2)" and pm(None) == "n/a"


@pytest.mark.parametrize("kwargs, match", [
    ({"envs": ["WM-TextWorld-v0"]}, "registered real env"),
    ({"envs": ["NoSuch-v0"]}, "registered real env"),
    ({"sections": ["sft", "plots"]}, "unknown sections"),
    ({"episodes": 0}, "episodes must be >= 1"),
    ({"group": 1}, "group must be >= 2"),
    ({"budgets": [0, -1]}, "budgets"),
    ({"grpo_steps": 1, "rwml_trade": 1}, "grpo_steps must exceed rwml_trade"),
    ({"rwml_trade": -1}, "rwml_trade must be >= 0"),
    ({"init": "smollm"}, "unknown init"),
])
def test_bad_config_is_a_clear_error(kwargs, match):
    with pytest.raises(ValueError, match=match):
        UtilityConfig(**kwargs)


def test_cli_lists_utility():
    from wmgym.cli.bench import BENCHMARKS

    assert BENCHMARKS["utility"][0] == "wmgym.benchmarks.utility"


@pytest.mark.slow
def test_every_section_end_to_end(tmp_path, trained_textworld_model_dir, textworld_gold_file):
    from wmgym.benchmarks.utility import run

    cfg = UtilityConfig(envs=["TextWorld-v0"], episodes=2, seeds=1, sft_steps=2, grpo_steps=2, group=2,
                        eval_games=2, max_steps=4, synth_factor=2, budgets=[0, 2], verifier_games=2,
                        verifier_agents=["scripted"], score_eval=True, rwml_trade=1, rwml_steps=1,
                        models={"TextWorld-v0": str(trained_textworld_model_dir)},
                        real_data={"TextWorld-v0": textworld_gold_file})
    out = tmp_path / "utility"
    run(cfg, out=str(out), argv=["wmgym", "bench", "utility", "(test)"])
    data = json.loads((out / "result.json").read_text())
    assert data["benchmark"] == "utility" and data["metadata"]["seeds"]["training"] == [0]
    r = data["results"]["envs"]["TextWorld-v0"]
    # sft: every arm (one seed here; test_spread_and_cells checks the spread over seeds), real-env success in
    # [0, 1] on the 2 held-out games
    assert set(r["sft"]) == set(SFT_ARMS)
    for arm, a in r["sft"].items():
        assert a["success"]["n"] == 1 and all(0.0 <= v <= 1.0 for v in a["success"]["values"])
        assert a["success"]["min"] <= a["success"]["mean"] <= a["success"]["max"]
        assert all(x["eval"]["games"] == 2 and x["eval"]["split"] == "test" for x in a["runs"])
        assert a["success_score"]["n"] == 1 and 0.0 <= a["success_score"]["mean"] <= 1.0
    sizes = {arm: a["train_episodes"] for arm, a in r["sft"].items()}
    assert sizes["mixed"] == sizes["real"] + sizes["synth"]
    assert r["sft"]["wm-sft"]["runs"][0]["train"]["warm_start_steps"] == 2
    d = r["synth_data"]
    assert 1 <= d["kept"] <= 2 and d["kept"] <= d["twin_won"] <= d["played"] <= 4
    assert set(r["goals"]) == {"synth >= 0.9 real", "wm-sft >= sft"}
    # rl: each arm trained 2 GRPO steps, the RWML arm 1 (its first step's episodes went to rollouts); the twin
    # arm spent no real env step
    assert set(r["rl"]) == set(RL_ARMS) | {RWML_ARM}
    for arm, a in r["rl"].items():
        assert all(len(x["curve"]) == (1 if arm == RWML_ARM else 2) and 0.0 <= x["eval"]["success"] <= 1.0
                   for x in a["runs"])
        assert a["env_steps"]["mean"] > 0
    # the RWML arm ran its three phases: 2 rollouts (1 GRPO step of 2 x 1 episodes) of the SFT agent in the real
    # env, RWML on their transitions (1 step, or recorded as skipped when the filter left nothing), GRPO
    x = r["rl"][RWML_ARM]["runs"][0]
    run_dir = out / "TextWorld-v0" / "rl" / f"{RWML_ARM}-s0"
    assert x["rollouts"]["episodes"] == 2 and x["rollouts"]["env_steps"] > 0
    assert x["env_steps"] == x["real_env_steps"] == x["rollouts"]["env_steps"] + x["grpo_env_steps"]
    assert x["grpo_env_steps"] == x["curve"][0]["env_steps"] > 0
    assert x["start"] == r["sft"]["real"]["runs"][0]["eval"]
    rw = x["rwml"]
    assert rw["transitions"] == x["rollouts"]["env_steps"] - rw["skipped_too_long"]
    assert rw.get("effective_share_before") is None or 0.0 <= rw["effective_share_before"] <= 1.0
    grpo_start = json.loads((run_dir / "curve.json").read_text())["config"]["model"]
    if rw.get("skipped"):
        assert rw["kept"] == 0 and grpo_start == str(out / "TextWorld-v0" / "sft" / "real-s0")
    else:
        assert rw["steps"] == 1 and rw["kept"] > 0 and grpo_start == str(run_dir / "rwml")
        assert (run_dir / "rwml" / "model.safetensors").is_file()
    assert "rwml_vs_grpo" in r and RWML_ARM in r["rwml_vs_grpo"] and "sft+grpo" in r["rwml_vs_grpo"]
    assert r["rl"]["sft+grpo-twin"]["real_env_steps"]["max"] == 0
    assert all(a["success_score"]["n"] == 1 and a["start_score"]["n"] == 1 for a in r["rl"].values())
    assert r["rl"]["sft+grpo-twin"]["runs"][0]["grpo_env"] == "WM-TextWorld-v0"
    # verifier: TextWorld's eat at budgets 0 and 2, for the scripted agent and the seed-0 real SFT agent
    v = r["verifier"]
    assert v["irreversible"] == ["eat"] and len(v["agents"]) == 2
    for per in v["agents"].values():
        assert set(per) == {"0", "2"} and per["0"]["verifications"] == 0
        assert all(x["prevented"] + x["right_blocked"] == x["blocked"] for x in per.values())
    report = (out / "report.md").read_text()
    for heading in ("### Agent SFT", "### GRPO", "### Verifier", "RWML mid-training", "sft_success.png",
                    "rl_curve_TextWorld-v0.png"):
        assert heading in report
    assert all((out / f).stat().st_size > 0 for f in data["figures"])

    # resuming: finished arms are read back, nothing is trained again
    marker = out / "TextWorld-v0" / "sft" / "real-s0" / "model.safetensors"
    before = marker.stat().st_mtime_ns
    run(cfg, out=str(out), argv=["wmgym", "bench", "utility", "(test)"])
    assert marker.stat().st_mtime_ns == before
    again = json.loads((out / "result.json").read_text())["results"]["envs"]["TextWorld-v0"]
    assert again["sft"]["real"]["success"] == r["sft"]["real"]["success"]

    # a rerun on more held-out games scores the finished agents again (both modes), and trains nothing
    import dataclasses

    run(dataclasses.replace(cfg, eval_games=3), out=str(out), argv=["wmgym", "bench", "utility", "(test)"])
    assert marker.stat().st_mtime_ns == before
    more = json.loads((out / "result.json").read_text())["results"]["envs"]["TextWorld-v0"]
    for section in ("sft", "rl"):
        for a in more[section].values():
            x = a["runs"][0]
            assert x["eval"]["games"] == 3 and x["eval_score"]["games"] == 3
    x = more["rl"]["sft+grpo"]["runs"][0]
    assert x["start"] == more["sft"]["real"]["runs"][0]["eval"] and x["start"]["games"] == 3


@pytest.mark.slow
def test_sft_from_the_twins_weights(tmp_path, trained_textworld_model_dir, textworld_gold_file):
    """``init="twin"``: the SFT arms start from the twin's world-model weights (its tokenizer, its learning rate),
    and the extra ``scratch`` arm trains the real episodes from scratch, the baseline of the warm-start goal."""
    from transformers import AutoTokenizer

    from wmgym.benchmarks.utility import SCRATCH_ARM, run
    from wmgym.training.agent import SMALL_MODEL_LR

    twin = str(trained_textworld_model_dir)
    cfg = UtilityConfig(envs=["TextWorld-v0"], sections=["sft"], init="twin", episodes=2, seeds=1, sft_steps=2,
                        eval_games=1, max_steps=3, synth_factor=2, models={"TextWorld-v0": twin},
                        real_data={"TextWorld-v0": textworld_gold_file})
    assert cfg.sft_arms == [*SFT_ARMS, SCRATCH_ARM]
    out = tmp_path / "utility"
    run(cfg, out=str(out), argv=["wmgym", "bench", "utility", "(test)"])
    r = json.loads((out / "result.json").read_text())["results"]["envs"]["TextWorld-v0"]
    assert set(r["sft"]) == {*SFT_ARMS, SCRATCH_ARM}
    assert r["goals"].keys() == {"synth >= 0.9 real", "wm-sft >= sft", "twin-init >= scratch"}
    vocab = len(AutoTokenizer.from_pretrained(twin))
    for arm, a in r["sft"].items():
        x = a["runs"][0]
        assert x["train"]["init"] == ("tiny" if arm == SCRATCH_ARM else twin) and x["train"]["action_steps"] == 2
        saved = json.loads((out / "TextWorld-v0" / "sft" / f"{arm}-s0" / "wmgym.json").read_text())["config"]
        assert saved["lr"] == (2e-3 if arm == SCRATCH_ARM else SMALL_MODEL_LR)
        arm_dir = out / "TextWorld-v0" / "sft" / f"{arm}-s0"
        if arm == SCRATCH_ARM:  # its own tokenizer, trained on the agent chats
            assert (arm_dir / "init" / "tokenizer.json").is_file()
        else:
            assert not (arm_dir / "init").exists() and len(AutoTokenizer.from_pretrained(arm_dir)) == vocab
    assert r["sft"]["real"]["train_episodes"] == r["sft"][SCRATCH_ARM]["train_episodes"]
    assert "started from the twin's world-model weights" in (out / "report.md").read_text()


def test_real_episodes_collects_the_real_policy_when_the_default_data_has_none(tmp_path, textworld_gold_file):
    """``--real-policy scripted``: the default twin's data holds expert, noisy and random episodes only, so the
    real arm's episodes are collected with the scripted agent instead of failing on "no won scripted episode"."""
    import shutil

    from wmgym.benchmarks.utility import real_episodes
    from wmgym.training.default import data_paths
    from wmgym.training.trajectories import load_episodes

    default = data_paths("TextWorld-v0")[0]
    default.parent.mkdir(parents=True, exist_ok=True)
    had = default.is_file()
    if not had:  # the gold (expert) episodes stand in for the default's data
        shutil.copy(textworld_gold_file, default)
    try:
        assert all(ep.policy != "scripted" for ep in load_episodes(str(default)))
        cfg = UtilityConfig(envs=["TextWorld-v0"], episodes=2, real_policy="scripted")
        path = real_episodes(cfg, "TextWorld-v0", tmp_path)
        eps = load_episodes(str(path))
        assert len(eps) == 2 and all(ep.policy == "scripted" and ep.won for ep in eps)
        assert real_episodes(cfg, "TextWorld-v0", tmp_path) == path  # read back, not collected again
    finally:
        if not had:
            default.unlink()
