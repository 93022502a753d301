"""`wmgym train agent`: agent SFT on real collected episodes (loss on actions only), the world-model warm start,
history windows, and the output directory played as ``lm:DIR``."""

from __future__ import annotations

import json

import gymnasium as gym
import pytest

from wmgym.agents import make_agent, play
from wmgym.agents.lm import AGENT_SYSTEM, agent_messages
from wmgym.training.agent import (AgentConfig, agent_examples, chat_windows, episode_turns, label_chat, train,
                                  window_messages)
from wmgym.training.data import IGNORE_INDEX, tokenize_chat
from wmgym.training.trajectories import load_episodes


@pytest.fixture(scope="module")
def expert_file(tmp_path_factory):
    """Four real expert episodes of TextWorld-v0 (games 0-3, as test_collect plays them), collected as `wmgym collect` does."""
    from wmgym.training.collect import CollectConfig, collect

    out = tmp_path_factory.mktemp("agent-data") / "tw.jsonl"
    collect(CollectConfig(env="TextWorld-v0", policy="expert", episodes=4, out=str(out), progress=False))
    return out


@pytest.fixture(scope="module")
def chatml_tokenizer(expert_file):
    from wmgym.training import tiny

    chats = [agent_messages(*episode_turns(ep)) for ep in load_episodes(expert_file)]
    return tiny.build_tokenizer(chats, "tiny")


def _supervised(tokenizer, ex) -> str:
    return tokenizer.decode([t for t, lab in zip(ex["input_ids"], ex["labels"]) if lab != IGNORE_INDEX])


def test_action_labels_are_the_assistant_turns_as_sft_labels_them(expert_file, chatml_tokenizer):
    ep = max(load_episodes(expert_file), key=lambda e: e.num_steps)
    observations, actions = episode_turns(ep)
    messages = agent_messages(observations[:-1], actions)
    mine = label_chat(chatml_tokenizer, messages, {i for i, m in enumerate(messages) if m["role"] == "assistant"})
    ref = tokenize_chat(chatml_tokenizer, messages)
    assert mine["input_ids"] == ref.input_ids and mine["labels"] == ref.labels
    (ex,), stats = agent_examples(chatml_tokenizer, [ep], 4096, 0, "action")
    assert _supervised(chatml_tokenizer, ex) == "".join(a + "<|im_end|>" for a in actions)
    assert stats["chats"] == 1 and stats["skipped_windows"] == 0


def test_world_model_labels_are_every_observation_but_the_first(expert_file, chatml_tokenizer):
    ep = max(load_episodes(expert_file), key=lambda e: e.num_steps)
    observations, _ = episode_turns(ep)
    (ex,), _ = agent_examples(chatml_tokenizer, [ep], 4096, 0, "wm")
    assert _supervised(chatml_tokenizer, ex) == "".join(o + "<|im_end|>" for o in observations[1:])
    assert AGENT_SYSTEM in chatml_tokenizer.decode(ex["input_ids"])


def test_history_windows_supervise_each_action_once_with_the_first_exchange_kept():
    assert chat_windows(5, 0) == [(5, 0)] and chat_windows(3, 4) == [(3, 0)]
    assert chat_windows(10, 4) == [(5, 0), (7, 5), (9, 7), (10, 9)]
    obs, acts = [f"o{i}" for i in range(11)], [f"a{i}" for i in range(10)]
    seen = []
    for end, first in chat_windows(10, 4):
        messages, labelled = window_messages(obs, acts, end, first, 4, "action")
        assert messages == agent_messages(obs[:end], acts[:end], 4) and messages[1]["content"] == "o0"
        seen += [messages[i]["content"] for i in sorted(labelled)]
        wm, wm_labelled = window_messages(obs, acts, end, first, 4, "wm")
        assert [wm[i]["content"] for i in sorted(wm_labelled)] == [f"o{k + 1}" for k in range(first, end)]
    assert seen == acts


def _cfg(data, out, **kw) -> AgentConfig:
    base = dict(data=[str(data)], out=str(out), max_steps=24, logging_steps=2, eval_steps=100, save_steps=100,
                eval_fraction=0.25, batch_tokens=2048, progress=False, lr=3e-3)
    return AgentConfig(**{**base, **kw})


def test_train_agent_loss_falls_and_the_model_plays_as_lm_dir(expert_file, tmp_path):
    out = tmp_path / "agent"
    summary = train(_cfg(expert_file, out))
    losses = [loss for _, loss in summary["loss_history"]]
    assert summary["steps"] == 24 and summary["warm_start_steps"] == 0
    assert losses[-1] < 0.6 * losses[0], losses
    meta = json.loads((out / "wmgym.json").read_text())
    assert meta["agent"]["action_steps"] == 24 and meta["config"]["max_turns"] == 0
    assert summary["eval_episodes"] >= 1 and summary["eval_loss"] is not None
    for spec in (f"lm:{out}", f"lm:{out}?mode=score"):
        agent = make_agent(spec, "TextWorld-v0")
        env = gym.make("TextWorld-v0", max_episode_steps=3)
        result = play(env, agent, seed=0, options={"game": 0})
        env.close()
        assert 1 <= result["steps"] <= 3 and all(isinstance(a, str) for a in result["actions"])


def test_warm_start_runs_the_world_model_phase_then_the_actions(expert_file, tmp_path):
    out = tmp_path / "warm"
    summary = train(_cfg(expert_file, out, warm_start="wm", warm_start_steps=8, max_steps=6, max_turns=2))
    assert summary["warm_start_steps"] == 8 and summary["action_steps"] == 6 and summary["steps"] == 14
    assert summary["warm_start_loss_history"] and summary["warm_start_loss_history"][-1][0] <= 8
    assert make_agent(f"lm:{out}", "TextWorld-v0").max_turns == 2  # the trained history bound is the default


def test_the_warm_start_batches_come_first_and_are_observation_labelled(expert_file, chatml_tokenizer):
    from wmgym.training.sft_batches import schedule

    cfg = _cfg(expert_file, "unused", warm_start="wm")
    eps = load_episodes(expert_file)
    wm, _ = agent_examples(chatml_tokenizer, eps, cfg.max_length, 0, "wm")
    act, _ = agent_examples(chatml_tokenizer, eps, cfg.max_length, 0, "action")
    batches = schedule(act, [(wm, (3 + 0.5) / 8)], cfg, 8)
    assert all(ex in wm for b in batches[:3] for ex in b)
    assert all(ex in act for b in batches[3:] for ex in b)


def test_bad_settings_are_named(expert_file, tmp_path):
    with pytest.raises(ValueError, match="unknown --warm-start 'rl'"):
        _cfg(expert_file, tmp_path, warm_start="rl")
    with pytest.raises(ValueError, match="--lora needs a pretrained"):
        _cfg(expert_file, tmp_path, lora=True)
    with pytest.raises(FileNotFoundError):
        _cfg(tmp_path / "missing.jsonl", tmp_path)
    with pytest.raises(ValueError, match=r"no episode of policies \['scripted'\].*\['expert'\]"):
        train(_cfg(expert_file, tmp_path / "x", policy=["scripted"]))


def test_lora_on_a_pretrained_chat_model_saves_a_merged_model_lm_dir_plays(expert_file, tmp_path):
    from wmgym.training.tiny import build_tiny_model

    texts = [m["content"] for ep in load_episodes(expert_file) for m in agent_messages(*episode_turns(ep))]
    base = build_tiny_model(tmp_path / "base", texts, vocab_size=600)
    out = tmp_path / "lora"
    summary = train(_cfg(expert_file, out, model=str(base), lora=True, lora_r=4, max_steps=4, lr=1e-3))
    assert summary["lora"] and summary["steps"] == 4
    assert not list(out.glob("adapter_*"))  # merged: an ordinary model directory
    agent = make_agent(f"lm:{out}?mode=score", "TextWorld-v0")
    agent.reset("You are in a kitchen.", {}, 0)
    assert agent.act("You are in a kitchen.", {"admissible_commands": ["go north", "look"]}) in ("go north", "look")


def test_default_learning_rates_follow_the_model(expert_file, tmp_path):
    """Tiny from scratch 2e-3, LoRA 2e-4; full fine-tuning of a given model 2e-5, unless it is a small model
    (a default twin's world model as the warm start), which 2e-5 would barely move: 1e-3. A given lr wins."""
    from types import SimpleNamespace

    from wmgym.training.agent import SMALL_MODEL_LR, SMALL_MODEL_PARAMS, default_lr

    class Sized:  # num_parameters only sums parameters()
        def __init__(self, n):
            self.n = n

        def parameters(self):
            return [SimpleNamespace(numel=lambda: self.n)]

    assert _cfg(expert_file, tmp_path, lr=None).lr == 2e-3
    base = tmp_path / "base"
    base.mkdir()
    assert _cfg(expert_file, tmp_path, lr=None, model=str(base), lora=True).lr == 2e-4
    full = _cfg(expert_file, tmp_path, lr=None, model=str(base))
    assert full.lr is None  # known once the model is loaded
    assert default_lr(full, Sized(SMALL_MODEL_PARAMS - 1)) == SMALL_MODEL_LR
    assert default_lr(full, Sized(135_000_000)) == 2e-5
    assert default_lr(_cfg(expert_file, tmp_path, lr=5e-4, model=str(base)), Sized(10)) == 5e-4
