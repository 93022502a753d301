"""SFT of the tiny preset on real TextWorld trajectories: loss falls, the result loads, resume after kill -9."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from wmgym.training.collect import CollectConfig, collect


@pytest.fixture(scope="module")
def tw_file(tmp_path_factory, textworld_expert_episodes):
    """Real TextWorld episodes: the two expert ones plus three noisy-expert ones collected here."""
    from wmgym.training.trajectories import TrajectoryWriter

    path = tmp_path_factory.mktemp("sft-data") / "tw.jsonl"
    with TrajectoryWriter(path) as w:
        for ep in textworld_expert_episodes:
            w.write(ep)
    collect(CollectConfig(env="TextWorld-v0", policy="noisy-expert:0.3", episodes=3, out=str(path), progress=False,
                          max_steps=8))
    return str(path)


def _sft_args(data: str, out: str, steps: int, save_steps: int = 1000, preset: str = "tiny-s") -> list[str]:
    return ["train", "sft", "--data", data, "--out", out, "--preset", preset, "--max-steps", str(steps),
            "--save-steps", str(save_steps), "--eval-fraction", "0", "--max-length", "2048",
            "--batch-tokens", "2048", "--logging-steps", "2", "--lr", "3e-3", "--no-progress"]


def test_tiny_sft_loss_falls_and_saves_a_loadable_model(tw_file, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from wmgym.cli import main

    out = tmp_path / "run"
    assert main(_sft_args(tw_file, str(out), steps=16)) == 0
    summary = json.loads((out / "sft_summary.json").read_text())
    losses = [loss for _, loss in summary["loss_history"]]
    assert summary["steps"] == 16 and len(losses) == 8
    assert sum(losses[-2:]) / 2 < 0.75 * sum(losses[:2]) / 2, losses
    assert summary["tokens_per_s"] > 0 and summary["parameters"] > 0

    for name in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"):
        assert (out / name).exists(), name
    assert "chat_template" in json.loads((out / "tokenizer_config.json").read_text())
    tok = AutoTokenizer.from_pretrained(out)
    model = AutoModelForCausalLM.from_pretrained(out)
    prompt = tok.apply_chat_template([{"role": "system", "content": "ctx"}, {"role": "user", "content": "look"}],
                                     tokenize=False, add_generation_prompt=True)
    assert prompt.endswith("<|im_start|>assistant\n")
    assert model.config.model_type == "llama" and model.config.tie_word_embeddings


def test_argmax_em_equals_greedy_generation(trained_textworld_model_dir, textworld_expert_episodes):
    """The one-pass EM used during training agrees with step-by-step greedy decoding."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from wmgym.training.evaluate import argmax_em, generate_em

    tok = AutoTokenizer.from_pretrained(trained_textworld_model_dir)
    model = AutoModelForCausalLM.from_pretrained(trained_textworld_model_dir)
    fast = argmax_em(model, tok, textworld_expert_episodes)
    slow = generate_em(model, tok, textworld_expert_episodes)
    assert fast.n_steps == slow.n_steps == 6
    assert fast.em == slow.em and fast.em > 0.5
    assert fast.per_step == slow.per_step


def test_training_data_does_not_depend_on_the_order_of_the_file(tw_file, tmp_path):
    """Collection workers append episodes as they finish, so a second collection of the same episodes orders them
    otherwise; the episodes training sees (and so its batches and held-out subset) must come out the same."""
    from wmgym.training.sft import SFTConfig
    from wmgym.training.sft_batches import load_data

    lines = open(tw_file).read().splitlines()
    shuffled = tmp_path / "shuffled.jsonl"
    shuffled.write_text("\n".join(lines[::-1][1:] + lines[-1:]) + "\n")
    assert shuffled.read_text() != open(tw_file).read()
    for fraction in (0.0, 0.4):
        runs = [load_data(SFTConfig(data=[str(f)], out=str(tmp_path / "o"), eval_fraction=fraction, model="tiny"))
                for f in (tw_file, shuffled)]
        keys = [[[(ep.game_id, ep.policy, ep.index) for ep in part] for part in run[:2]] for run in runs]
        assert keys[0] == keys[1] and len(keys[0][0]) + len(keys[0][1]) == len(lines)
        if fraction:
            assert keys[0][1], "the split held some games out"


@pytest.mark.slow
def test_resume_after_kill_continues_from_the_checkpoint(tw_file, tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "wmgym.cli", *_sft_args(tw_file, str(out), steps=24, save_steps=6)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 240
        while not (out / "checkpoint-12" / "trainer_state.json").exists():
            assert proc.poll() is None, "training ended before it could be killed"
            assert time.time() < deadline, "no checkpoint-12 within 240 s"
            time.sleep(0.2)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    done = max(int(p.name.split("-")[1]) for p in out.glob("checkpoint-*") if (p / "trainer_state.json").exists())
    assert 12 <= done < 24

    rerun = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert f"resuming from {out / f'checkpoint-{done}'}" in rerun.stdout
    summary = json.loads((out / "sft_summary.json").read_text())
    assert summary["steps"] == 24 and summary["resumed_from"].endswith(f"checkpoint-{done}")
    steps = [s for s, _ in summary["loss_history"]]
    assert steps == sorted(set(steps)), "steps were repeated: the run restarted instead of resuming"
    assert steps[-1] == 24 and min(s for s in steps if s > done) > done


def test_lora_on_a_local_pretrained_model_changes_its_weights(tw_file, tiny_model_dir, tmp_path):
    """``--model DIR --lora``: adapters train through peft and are merged into a plain HF model."""
    import torch
    from safetensors.torch import load_file

    from wmgym.cli import main

    out = tmp_path / "lora"
    args = ["train", "sft", "--data", tw_file, "--model", str(tiny_model_dir), "--lora", "--lora-r", "4",
            "--out", str(out), "--max-steps", "3", "--eval-fraction", "0", "--batch-tokens", "4096",
            "--max-length", "4096", "--no-progress"]
    assert main(args) == 0
    before, after = load_file(tiny_model_dir / "model.safetensors"), load_file(out / "model.safetensors")
    assert set(after) == set(before), "the merged model has the base model's tensors (no adapter leftovers)"
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert changed and all("proj" in k for k in changed)
    summary = json.loads((out / "sft_summary.json").read_text())
    assert summary["lora"] and summary["steps"] == 3


def test_gradient_checkpointing_trains_lora_to_the_same_weights(tw_file, tiny_model_dir, tmp_path):
    """``--gradient-checkpointing`` recomputes activations in the backward pass: with LoRA on a pretrained model
    (peft's frozen inputs are where checkpointing usually breaks) it must train, to the same weights as without
    (LoRA dropout off, so both runs compute the same function)."""
    import torch
    from safetensors.torch import load_file

    from wmgym.training.sft import SFTConfig, train

    outs = []
    for on in (True, False):
        out = tmp_path / f"ckpt-{on}"
        train(SFTConfig(data=[tw_file], model=str(tiny_model_dir), lora=True, lora_r=4, lora_dropout=0.0,
                        out=str(out), max_steps=3, eval_fraction=0, batch_tokens=4096, max_length=4096,
                        progress=False, bf16=False, gradient_checkpointing=on))
        outs.append(load_file(out / "model.safetensors"))
    base = load_file(tiny_model_dir / "model.safetensors")
    ckpt, plain = outs
    assert any(not torch.equal(base[k], ckpt[k]) for k in base), "checkpointed training changed nothing"
    for k in plain:
        torch.testing.assert_close(ckpt[k], plain[k], rtol=1e-4, atol=1e-5)


def test_max_minutes_stops_at_the_budget_and_saves(tw_file, tmp_path):
    """``--max-minutes``: a wall-clock budget ends the run at a step end, long before --max-steps; the model is
    saved and evaluated as at any end, and the summary says where it stopped."""
    from wmgym.cli import main

    out = tmp_path / "budget"
    args = _sft_args(tw_file, str(out), steps=100000) + ["--max-minutes", "0.05"]  # 3 s
    assert main(args) == 0
    summary = json.loads((out / "sft_summary.json").read_text())
    assert summary["max_minutes"] == 0.05
    assert 1 <= summary["steps"] == summary["stopped_by_time_at_step"] < 100000
    assert summary["wall_s"] < 60 and (out / "model.safetensors").exists()
    with pytest.raises(ValueError, match="max-minutes"):
        from wmgym.training.sft import SFTConfig

        SFTConfig(data=[tw_file], max_minutes=-1)


def test_sft_tokenizer_numbers_turns_as_its_preset_says(tw_file, tmp_path):
    """``--preset tiny-count``: the trained tokenizer numbers the user turns from 2, so on a won game the count
    the game prints ("in 5 turns") is the same tokens as the last header's number. ``tiny-turns``: each header
    is one token (the SFT path once trained the tokenizer without the headers, which then split in two)."""
    from transformers import AutoTokenizer

    from wmgym.cli import main
    from wmgym.training.data import episode_chats
    from wmgym.training.trajectories import load_episodes

    out = tmp_path / "run"
    assert main(_sft_args(tw_file, str(out), steps=2, preset="tiny-count")) == 0
    tok = AutoTokenizer.from_pretrained(out)
    episodes = load_episodes(tw_file)
    won = [chat for ep, (_, chat) in zip(episodes, episode_chats(episodes)) if ep.won]
    assert won
    for chat in won:
        ids = tok.apply_chat_template(chat, tokenize=True, return_dict=False)
        pieces = [tok.decode([i]) for i in ids]
        starts = [k for k, p in enumerate(pieces) if p == "<|im_start|>"]
        last_user = max(k for k in starts if "".join(pieces[k + 1:k + 3]).startswith("user"))
        header = "".join(pieces[last_user:pieces.index("\n", last_user)])
        n_commands = sum(m["role"] == "user" for m in chat)
        assert header == f"<|im_start|>user {n_commands + 1}"
        number = ids[last_user + 2:pieces.index("\n", last_user)]  # after "<|im_start|>", "user"
        end = len(ids) - ids[::-1].index(tok.convert_tokens_to_ids("<|im_end|>")) - 1
        turns = [k for k in range(end) if pieces[k] == " turns"][-1]
        assert ids[turns - len(number):turns] == number  # "... in 5 turns.": the header's tokens
    # tiny-turns: each header one token, as its tokenizer was trained on them
    out = tmp_path / "turns"
    assert main(_sft_args(tw_file, str(out), steps=1, preset="tiny-turns")) == 0
    tok = AutoTokenizer.from_pretrained(out)
    pieces = [tok.decode([i]) for i in tok.apply_chat_template(won[0], tokenize=True, return_dict=False)]
    assert [p for p in pieces if p.startswith("user")] == [f"user {k}" for k in range(1, len(won[0]) // 2 + 1)]


def test_chats_that_do_not_fit_max_length_are_refused_not_looped_over(tw_file, tmp_path, capsys):
    """When no turn fits ``max_length`` with its system prompt there is nothing to train on: a clear error
    (it used to spin forever building an empty batch schedule)."""
    from wmgym.cli import main

    assert main([*_sft_args(tw_file, str(tmp_path / "run"), steps=2), "--max-length", "64"]) == 2
    assert "fits max_length=64 tokens" in capsys.readouterr().err


def test_sft_help_prints_every_field_doc_as_written(capsys):
    """Field docs become --help text; a '%' in one ("95% right") was read as a format and printed a dict."""
    from wmgym.cli import main

    with pytest.raises(SystemExit) as done:
        main(["train", "sft", "--help"])
    assert done.value.code == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "model copies 95% right" in out and "option_strings" not in out
    assert "--list-warmup" in out
