"""The warm-ups that let a fresh tiny model copy out of the initial state, and SFT running them."""

from __future__ import annotations

import json

import pytest

from wmgym.training import tiny


def test_induction_warmup_teaches_a_fresh_model_to_copy():
    """The phase change happens: copy accuracy on the synthetic task goes from chance to the target."""
    import torch

    torch.set_num_threads(1)
    tok = tiny.train_tokenizer([f"word{i} thing{i}" for i in range(300)], tiny.TinyPreset(vocab_size=600))
    model = tiny.build_model(tok, tiny.get_preset("tiny-s"))
    seen = []
    stats = tiny.induction_warmup(model, tok, max_steps=1500, target_accuracy=0.9, batch_size=16, prefix=24,
                                  chunk=8, chunks=4, on_step=lambda step, loss, acc: seen.append(acc))
    assert seen[0] < 0.1, "a fresh model copies by chance only"
    assert stats["accuracy"] >= 0.9 and stats["steps"] < 1500, stats
    assert stats["steps"] == len(seen)


@pytest.mark.parametrize("fast_bf16", [False, True])
def test_warmups_autocast_to_bf16_only_where_the_hardware_makes_it_fast(monkeypatch, fast_bf16):
    """On a CPU without AVX512-BF16/AMX a bf16 warm-up step was ~7x slower than float32 (the quickstart's warm-ups
    took hours there): the warm-ups follow SFT's rule (``bf16_supported``) unless told otherwise."""
    import torch

    from wmgym.training import sft_trainer

    torch.set_num_threads(1)
    monkeypatch.setattr(sft_trainer, "bf16_supported", lambda: fast_bf16)
    tok = tiny.train_tokenizer([f"word{i} thing{i}" for i in range(100)], tiny.TinyPreset(vocab_size=300))
    model = tiny.build_model(tok, tiny.get_preset("tiny-s"))
    seen = []
    model.register_forward_hook(lambda *_: seen.append(torch.is_autocast_enabled("cpu")))
    tiny.induction_warmup(model, tok, max_steps=2, batch_size=2, prefix=24, chunk=8, chunks=2)
    texts = [torch.tensor(tok("word1 thing2 word3 thing4 " * 20, add_special_tokens=False)["input_ids"])]
    tiny.recall_warmup(model, texts, max_steps=2, batch_tokens=256, window=64, span=8, spans=2)
    assert seen == [fast_bf16] * 4
    seen.clear()
    tiny.induction_warmup(model, tok, max_steps=1, batch_size=2, prefix=24, chunk=8, chunks=2, bf16=not fast_bf16)
    assert seen == [not fast_bf16], "an explicit choice wins over the hardware's"


def test_list_copy_task_finds_each_item_by_the_item_two_tokens_back():
    """The list warm-up's sequences: after a shared separator only the item before it tells what comes next."""
    import torch

    pool = torch.arange(10, 300)
    prefix, chunk = 32, 8
    ids, labels = tiny.copy_task_batch(pool, torch.Generator().manual_seed(0), 8, prefix, chunk, 3, separators=3)
    ambiguous = 0
    for seq, lab in zip(ids.tolist(), labels.tolist()):
        head, items, seps = seq[:prefix], seq[:prefix:2], seq[1:prefix:2]
        assert len(set(items)) == len(items) and len(set(seps)) <= 3 and not set(items) & set(seps)
        assert lab[:prefix] == [-100] * prefix
        for t in range(prefix, len(seq)):
            if (t - prefix) % chunk == 0:  # a run's first token is given, not a label; runs start at an item
                assert lab[t] == -100 and seq[t] in items
                continue
            assert lab[t] == seq[t]
            if seq[t] in items:  # an item: the one two tokens back, found in the prefix, is two before it
                assert head[head.index(seq[t - 2]) + 2] == seq[t]
                ambiguous += head.count(seq[t - 1]) > 1  # the separator alone does not say which item
    assert ambiguous > 0
    plain, _ = tiny.copy_task_batch(pool, torch.Generator().manual_seed(0), 4, prefix, chunk, 3)
    assert all(len(set(seq[:prefix])) == prefix for seq in plain.tolist())


def test_sft_with_induction_warmup_records_it_and_a_resume_reuses_it(tmp_path, capsys, alf_lines):
    """``--induction-warmup``: the warm-up runs once before SFT; a rerun in the same OUT loads its weights."""
    from wmgym.training.sft import SFTConfig, train
    from wmgym.training.trajectories import Episode, Step, TrajectoryWriter

    data = tmp_path / "alf.jsonl"
    with TrajectoryWriter(data) as w:
        for i in range(6):
            steps = [Step(action="go to countertop 1", observation=alf_lines[3], reward=0.0, terminated=False,
                          truncated=False, action_valid=True),
                     Step(action="take candle 2 from countertop 1", observation=alf_lines[4], reward=0.0,
                          terminated=False, truncated=False, action_valid=True)]
            w.write(Episode(env_id="ALFWorld-v0", game_id=f"train/{i}", seed=i, split="train", policy="expert",
                            init_context="\n".join(alf_lines[:3]), task="put a candle in cabinet",
                            initial_observation="You are in the middle of a room.", steps=steps, won=False, index=i))
    cfg = dict(data=[str(data)], out=str(tmp_path / "run"), preset="tiny-phrases", induction_warmup=5, list_warmup=3,
               recall_warmup=2, recall_mix=0.5, max_steps=2, eval_fraction=0, progress=False, batch_tokens=512,
               save_steps=1, logging_steps=1, lr=3e-3)
    first = train(SFTConfig(**cfg))
    assert first["induction_warmup"]["steps"] == 5 and first["induction_warmup"]["lists"]["steps"] == 3
    assert first["induction_warmup"]["recall"]["steps"] == 2
    assert "recall mix: 1 of 2 batches are recall batches" in capsys.readouterr().out
    assert (tmp_path / "run" / "init" / "warmup.json").exists()
    assert json.loads((tmp_path / "run" / "wmgym.json").read_text())["sft"]["induction_warmup"]["steps"] == 5
    capsys.readouterr()
    again = train(SFTConfig(**cfg))  # resumes in the same OUT: the warm-up is loaded, not run again
    assert "induction warm-up: reusing" in capsys.readouterr().out
    assert again["induction_warmup"] == first["induction_warmup"]
    with pytest.raises(ValueError, match="tiny"):
        SFTConfig(**{**cfg, "model": str(tmp_path / "run")})
    with pytest.raises(ValueError, match="set induction_warmup too"):
        SFTConfig(**{**cfg, "induction_warmup": 0})
    with pytest.raises(ValueError, match="recall_mix must be a fraction"):
        SFTConfig(**{**cfg, "recall_mix": 1.0})


def test_recall_task_copies_spans_of_the_text_after_a_given_cue():
    """The recall warm-up's sequences: a window of a text, then runs copied from it; only a run's tokens after its
    cue are labels, and every run is a contiguous piece of the window."""
    import torch

    texts = [torch.arange(100, 100 + n) % 37 for n in (50, 300)]  # recurring tokens, as words recur in prose
    ids, labels = tiny.recall_task_batch(texts, torch.Generator().manual_seed(0), batch_tokens=1000, window=120,
                                         span=10, spans=4, cue=3)
    assert ids.shape[0] == 1000 // (120 + 4 * 10)
    for seq, lab in zip(ids.tolist(), labels.tolist()):
        n = next(i for i, x in enumerate(lab) if x != -100) - 3  # the window ends where the first run starts
        window = seq[:n]
        assert n in (50, 120) and lab[:n] == [-100] * n
        for r in range(4):
            run, run_lab = seq[n + 10 * r:n + 10 * r + 10], lab[n + 10 * r:n + 10 * r + 10]
            assert run_lab == [-100] * 3 + run[3:]
            assert any(window[i:i + 10] == run for i in range(len(window) - 9))


def test_mix_recall_replaces_evenly_spread_batches_the_same_way_each_time():
    """``recall_mix``: every 1/fraction-th batch becomes a recall batch, identical for the same seed (resume)."""
    from wmgym.training.sft_batches import mix_recall

    examples = [{"input_ids": list(range(5, 205)), "labels": [-100] * 200}]
    runs = []
    for _ in range(2):
        batches = [[{"input_ids": [1], "labels": [1]}] for _ in range(8)]
        assert mix_recall(batches, examples, 0.25, 2048, seed=0) == 2
        runs.append(batches)
    assert runs[0] == runs[1]
    replaced = [i for i, b in enumerate(runs[0]) if b[0]["input_ids"] != [1]]
    assert replaced == [3, 7]
    assert all(any(x != -100 for x in ex["labels"]) for i in replaced for ex in runs[0][i])
