"""RWML: the sim-to-real reward's rules, the filters, prompt fitting, and a tiny model whose reward rises."""

from __future__ import annotations

import json
import math

import pytest

from wmgym.training.rewards import StateReward, as_text
from wmgym.training.trajectories import Episode, Step, TrajectoryWriter

GOLD = "You open the drawer 1. The drawer 1 is open. In it, you see a pen 1."


@pytest.fixture(scope="module")
def binary():
    return StateReward("binary", threshold=0.1)


@pytest.fixture(scope="module")
def continuous():
    return StateReward("continuous")


# ---------------------------------------------------------------- the reward
def test_identical_states_score_one(binary, continuous):
    assert binary([GOLD, "  " + GOLD + "\n", "x [SUCCESS]"], [GOLD, GOLD, "x [SUCCESS]"]) == [1.0, 1.0, 1.0]
    assert continuous([GOLD], [GOLD])[0] == pytest.approx(1.0)
    assert StateReward("em")([GOLD, GOLD + "!"], [GOLD, GOLD]) == [1.0, 0.0]


def test_different_states_score_lower(binary, continuous):
    near = "You open the drawer 1. The drawer 1 is open. In it, you see a pen 2."
    far = "You arrive at sofa 1. On the sofa 1, you see a pillow 1 and a remote control 1."
    sims = continuous([near, far], [GOLD, GOLD])
    assert 1.0 > sims[0] > sims[1] >= 0.0, sims
    assert binary([far], [GOLD]) == [0.0]
    # the threshold decides: a looser one accepts the near miss the strict one rejects
    strict, loose = StateReward("binary", threshold=0.0001), StateReward("binary", threshold=1 - sims[0] + 0.01)
    assert strict([near], [GOLD]) == [0.0] and loose([near], [GOLD]) == [1.0]


def test_a_wrong_success_marker_scores_zero(continuous):
    assert continuous([GOLD], [GOLD + " [SUCCESS]"]) == [0.0]
    assert StateReward("continuous", marker_must_match=False)([GOLD], [GOLD + " [SUCCESS]"])[0] > 0.9


ODD = {"empty": "", "none": None, "blank": "   ", "bytes": b"\xff\xfe\x00garbage", "surrogate": "\ud800 lone",
       "number": 12345, "very-long": "x" * 200_000, "control": "\x00\x01\x02",
       "message-list": [{"role": "assistant", "content": GOLD}], "empty-list": [], "none-content": {"content": None},
       "emoji": "\U0001f642" * 300}


@pytest.mark.parametrize("prediction", list(ODD.values()), ids=list(ODD))
def test_odd_predictions_give_a_float_and_never_raise(prediction, binary, continuous):
    for reward in (binary, continuous, StateReward("em")):
        (r,) = reward([prediction], [GOLD])
        assert isinstance(r, float) and 0.0 <= r <= 1.0 and not math.isnan(r)
    assert continuous([""], [GOLD]) == [0.0]  # an empty prediction of a non-empty state
    assert continuous([[{"role": "assistant", "content": GOLD}]], [GOLD]) == [1.0]  # TRL's conversational form


def test_as_text_and_bad_settings():
    assert as_text(None) == "" and as_text(b"ab") == "ab" and as_text([{"content": "c"}]) == "c"
    with pytest.raises(ValueError, match="binary"):
        StateReward("cosine")
    with pytest.raises(ValueError, match="cosine distance"):
        StateReward("binary", threshold=-1)


# ---------------------------------------------------------------- filters and prompts
def test_filters_drop_too_easy_and_unpredictable_transitions(tmp_path):
    from wmgym.training.rwml import PrePass, RWMLConfig, Transition, select

    data = tmp_path / "d.jsonl"
    data.write_text("")
    cfg = RWMLConfig(data=[str(data)], model="m")
    trs = [Transition(messages=[], target=str(i), env_id="E", game_id="g", step=i, action="a") for i in range(4)]
    pre = PrePass(rewards=[[1, 1, 1, 1], [0, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]],
                  best_similarity=[1.0, 0.95, 0.2, 0.3], agreement=[1.0, 0.9, 0.3, 0.95])
    kept, stats = select(trs, pre, cfg)
    # 0: too easy; 1: learnable (effective); 2: no sample near, samples disagree -> unpredictable;
    # 3: samples agree on a wrong state -> kept (a learnable error)
    assert [t.step for t in kept] == [1, 3]
    assert stats["too_easy_share"] == 0.25 and stats["unpredictable_share"] == 0.25
    assert stats["effective_share_before"] == 0.25 and stats["effective_share_of_kept"] == 0.5
    kept, _ = select(trs, pre, RWMLConfig(data=[str(data)], model="m", filter_easy=False, filter_unpredictable=False))
    assert len(kept) == 4


def test_config_refuses_bad_input(tmp_path):
    from wmgym.training.rwml import RWMLConfig

    data = tmp_path / "d.jsonl"
    data.write_text("")
    with pytest.raises(ValueError, match="--model"):
        RWMLConfig(data=[str(data)])
    with pytest.raises(ValueError, match="binary"):
        RWMLConfig(data=[str(data)], model="m", reward="bleu")
    with pytest.raises(ValueError, match="num_generations"):
        RWMLConfig(data=[str(data)], model="m", num_generations=1)
    with pytest.raises(FileNotFoundError):
        RWMLConfig(data=[str(tmp_path / "none.jsonl")], model="m")


def _episodes(n_games: int = 4, steps: int = 3) -> list[Episode]:
    """Episodes whose every step answers "Nothing happens." (a dynamics any model can learn)."""
    actions = ["open fridge", "go north", "take key from box", "inventory", "look"]
    eps = []
    for g in range(n_games):
        eps.append(Episode(env_id="TextWorld-v0", game_id=f"g{g}", seed=g, split="train", policy="expert",
                           init_context="You are in a kitchen. There is a fridge and a table.", task="eat the apple",
                           initial_observation="You are in a kitchen.",
                           steps=[Step(actions[(g + t) % len(actions)], "Nothing happens.", 0.0, False, False)
                                  for t in range(steps)]))
    return eps


def test_long_histories_lose_their_oldest_turns(tiny_model_dir):
    from transformers import AutoTokenizer

    from wmgym.training.rwml import episode_transitions, fit_prompt, prompt_ids

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    last = episode_transitions(_episodes(1, steps=12))[-1]
    full = len(prompt_ids(tok, last.messages))
    fitted = fit_prompt(tok, last, full - 10)
    assert fitted is not None and fitted.dropped_turns > 0
    assert fitted.messages[0] == last.messages[0] and fitted.messages[-1] == last.messages[-1]
    assert len(prompt_ids(tok, fitted.messages)) <= full - 10
    assert fit_prompt(tok, last, 3) is None  # not even the system prompt and the action fit


# ---------------------------------------------------------------- learning
@pytest.mark.slow
def test_a_tiny_model_raises_its_reward_with_rwml(tiny_model_dir, tmp_path):
    """A random tiny model learns to answer "Nothing happens." from the continuous embedding reward alone."""
    from wmgym.cli import main

    data = tmp_path / "nothing.jsonl"
    with TrajectoryWriter(data) as w:
        for ep in _episodes():
            w.write(ep)
    out = tmp_path / "run"
    assert main(["train", "rwml", "--data", str(data), "--model", str(tiny_model_dir), "--out", str(out),
                 "--reward", "continuous", "--max-steps", "16", "--prompts-per-step", "2", "--num-generations", "8",
                 "--lr", "3e-2", "--max-completion-length", "6", "--filter-samples", "0", "--no-progress",
                 "--seed", "0"]) == 0
    summary = json.loads((out / "rwml_summary.json").read_text())
    rewards = [h["reward"] for h in summary["history"]]
    assert summary["steps"] == 16 and len(rewards) == 16
    assert all(h["effective_groups"] is not None and 0 <= h["effective_groups"] <= 1 for h in summary["history"])
    first, last = sum(rewards[:4]) / 4, sum(rewards[-4:]) / 4
    assert last > first + 0.05, rewards  # measured: 0.134 -> 0.240
    assert (out / "model.safetensors").exists() and (out / "tokenizer.json").exists()


def test_prepass_only_measures_the_effective_share_and_is_cached(tiny_model_dir, tmp_path, capsys):
    from wmgym.cli import main

    data = tmp_path / "nothing.jsonl"
    with TrajectoryWriter(data) as w:
        for ep in _episodes(2, steps=2):
            w.write(ep)
    args = ["train", "rwml", "--data", str(data), "--model", str(tiny_model_dir), "--out", str(tmp_path / "run"),
            "--prepass-only", "--filter-samples", "3", "--max-completion-length", "6", "--no-progress"]
    assert main(args) == 0
    summary = json.loads((tmp_path / "run" / "rwml_summary.json").read_text())
    assert summary["prepass_transitions"] == 4 and summary["prepass_samples"] == 3
    for share in ("effective_share_before", "too_easy_share", "unpredictable_share"):
        assert 0.0 <= summary[share] <= 1.0
    samples = json.loads((tmp_path / "run" / "prepass.json").read_text())["samples"]
    assert len(samples) == 4 and all(len(s) == 3 for s in samples)
    assert "effective groups" in capsys.readouterr().out
    assert main(args) == 0  # a second run (or a resumed one) reuses the pre-pass samples
    assert "reusing" in capsys.readouterr().out
