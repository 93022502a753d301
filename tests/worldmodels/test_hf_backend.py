"""The hf backend: cached stepping equals full recomputation, batching equals one by one, robustness."""

from __future__ import annotations

import math
import time

import pytest
import torch

from wmgym.worldmodels import load_world_model
from wmgym.worldmodels.base import WorldModel
from wmgym.worldmodels.protocol import build_messages

ACTIONS = ["open fridge", "go north", "take key from box", "inventory", "eat apple", "look"]
CONTEXTS = ["Task: eat the apple\n- You are in the kitchen.", "You are in a hall.", "go"]


def greedy_full_recompute(wm, messages, max_new_tokens):
    """Greedy decoding that re-runs the whole sequence for every token (no cache at all)."""
    ids = wm.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=False)
    out, logprobs = [], []
    for _ in range(max_new_tokens):
        with torch.no_grad():
            logits = wm.model(input_ids=torch.tensor([list(ids) + out])).logits[0, -1]
        token = int(logits.argmax())
        out.append(token)
        logprobs.append(float(torch.log_softmax(logits, -1)[token]))
        if token in wm.stop_ids:
            return wm.tokenizer.decode(out[:-1], skip_special_tokens=True), logprobs
    return wm.tokenizer.decode(out, skip_special_tokens=True), logprobs


@pytest.fixture(scope="module")
def wm(tiny_model_dir):
    return load_world_model(tiny_model_dir, max_new_tokens=12)


def test_follows_protocol(wm):
    assert isinstance(wm, WorldModel)


def test_cached_steps_equal_full_recomputation(wm):
    h = wm.start(CONTEXTS[0])
    texts = []
    for action in ACTIONS:
        messages = build_messages(CONTEXTS[0], wm.history(h), action)
        step = wm.step(h, action)
        ref_text, ref_logprobs = greedy_full_recompute(wm, messages, 12)
        assert step.text == ref_text
        assert step.confidence == pytest.approx(sum(ref_logprobs) / len(ref_logprobs), abs=1e-4)
        texts.append(step.text)
    assert len(set(texts)) > 1, "the tiny model should say different things, or the test proves little"
    # Only the new tokens were fed: the cache grew by the last step's prompt delta, not the whole chat.
    assert wm._episodes[h].cache.get_seq_length() == len(wm._episodes[h].cached_ids)


def test_reuse_off_gives_the_same_text(tiny_model_dir, wm):
    cold = load_world_model(tiny_model_dir, max_new_tokens=12, reuse_cache=False)
    a, b = wm.start(CONTEXTS[1]), cold.start(CONTEXTS[1])
    for action in ACTIONS[:4]:
        assert wm.step(a, action).text == cold.step(b, action).text
    assert cold._episodes[b].cache is None


def test_batch_equals_one_by_one(wm):
    batch = [wm.start(c) for c in CONTEXTS]
    single = [wm.start(c) for c in CONTEXTS]
    for t in range(4):
        actions = [ACTIONS[(t + i) % len(ACTIONS)] for i in range(len(CONTEXTS))]
        if t == 2:  # edited chats (teacher forcing, anchoring) invalidate part of the cache
            for hs in (batch, single):
                wm.observe(hs[0], "look", "You are in the kitchen.")
                wm.replace_last(hs[1], "A hall. [SUCCESS]")
        got = wm.step_batch(batch, actions)
        want = [wm.step(h, a) for h, a in zip(single, actions)]
        assert [s.text for s in got] == [s.text for s in want]
        for g, w in zip(got, want):
            assert g.confidence == pytest.approx(w.confidence, abs=1e-4)
            assert g.parse_error == w.parse_error and g.success == w.success


def test_batch_rows_of_different_lengths_finish_independently(tiny_model_dir):
    wm = load_world_model(tiny_model_dir, max_new_tokens=30)
    handles = [wm.start(c) for c in CONTEXTS]
    solo = [wm.start(c) for c in CONTEXTS]
    got = wm.step_batch(handles, ACTIONS[:3])
    want = [wm.step(h, a) for h, a in zip(solo, ACTIONS[:3])]
    assert [s.text for s in got] == [s.text for s in want]
    assert [s.extra["completion_tokens"] for s in got] == [s.extra["completion_tokens"] for s in want]


def test_sampling_is_seeded_and_batchable(tiny_model_dir):
    wm = load_world_model(tiny_model_dir, max_new_tokens=12, temperature=1.0, top_p=0.9, top_k=50)
    a, b, c = (wm.start(CONTEXTS[0]) for _ in range(3))
    for h, seed in ((a, 7), (b, 7), (c, 8)):
        wm.set_seed(h, seed)
    [sa, sc] = wm.step_batch([a, c], ["open fridge", "open fridge"])
    sb = wm.step(b, "open fridge")
    assert sa.text == sb.text
    assert math.isfinite(sa.confidence) and sa.confidence < 0


def test_fork_continues_like_the_original(wm):
    h = wm.start(CONTEXTS[0])
    wm.step(h, ACTIONS[0])
    f = wm.fork(h)
    assert wm.history(f) == wm.history(h)
    wm.replace_last(f, "Something else entirely.")  # editing the fork leaves the original alone
    assert wm.history(h)[-1] != wm.history(f)[-1]
    g = wm.fork(h)
    assert wm.step(g, ACTIONS[1]).text == wm.step(h, ACTIONS[1]).text
    wm.end(f)
    with pytest.raises(KeyError, match="unknown or ended"):
        wm.step(f, "look")


def test_replace_last_needs_a_turn(wm):
    h = wm.start("ctx")
    with pytest.raises(ValueError, match="no assistant turn"):
        wm.replace_last(h, "x")


def test_overlong_chat_keeps_system_prompt_and_latest_turns(tiny_model_dir):
    wm = load_world_model(tiny_model_dir, max_new_tokens=8, max_context_tokens=160)
    h = wm.start(CONTEXTS[0])
    budget = 160 - 8
    for i in range(25):
        step = wm.step(h, f"{ACTIONS[i % len(ACTIONS)]} number {i}")
        assert step.extra["prompt_tokens"] <= budget
    assert step.extra["context_truncated"] is True
    ep = wm._episodes[h]
    assert 0 < ep.dropped < len(ep.history)
    # What was fed is the template of: the whole system prompt + the latest turns + the action.
    messages = build_messages(CONTEXTS[0], ep.history[ep.dropped:-1], ep.history[-1][0])
    expected = wm.chat_ids(messages)
    assert ep.cached_ids[:len(expected)] == expected


def test_overlong_system_prompt_is_cut_not_fatal(tiny_model_dir):
    wm = load_world_model(tiny_model_dir, max_new_tokens=8, max_context_tokens=64)
    h = wm.start("You are in a kitchen. " * 40)
    step = wm.step(h, "look")
    assert step.extra["context_truncated"] is True and step.extra["prompt_tokens"] <= 56


def test_runaway_generation_is_bounded_and_flagged(tiny_model_dir):
    wm = load_world_model(tiny_model_dir, max_new_tokens=3)
    h = wm.start(CONTEXTS[0])
    step = wm.step(h, "look")
    assert step.extra["completion_tokens"] == 3
    assert "max_new_tokens" in step.parse_error


def test_bad_arguments_name_the_valid_choices(tiny_model_dir):
    with pytest.raises(ValueError, match="valid backends: \\['hf', 'openai', 'vllm'\\]"):
        load_world_model(tiny_model_dir, backend="tgi")
    with pytest.raises(TypeError, match="valid settings"):
        load_world_model(tiny_model_dir, max_tokens=5)
    with pytest.raises(ValueError, match="temperature"):
        load_world_model(tiny_model_dir, temperature=-1)
    with pytest.raises(ValueError, match="dtype"):
        load_world_model(tiny_model_dir, dtype="int3")


def test_offline_hub_id_fails_fast(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.monotonic()
    with pytest.raises(FileNotFoundError, match="HF_HUB_OFFLINE"):
        load_world_model("X1AOX1A/WorldModel-Alfworld-Qwen2.5-7B")
    assert time.monotonic() - start < 2.0


def test_missing_directory_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="no config.json"):
        load_world_model(tmp_path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_world_model(str(tmp_path / "nope"))


def test_weights_load_from_safetensors_only(tiny_model_dir, tmp_path):
    """A checkpoint that only has pickle weights (pytorch_model.bin) is refused."""
    import shutil

    from safetensors.torch import load_file

    for f in tiny_model_dir.iterdir():
        if f.suffix != ".safetensors":
            shutil.copy(f, tmp_path / f.name)
    torch.save(load_file(tiny_model_dir / "model.safetensors"), tmp_path / "pytorch_model.bin")
    with pytest.raises(OSError, match="safetensors"):
        load_world_model(tmp_path)


def test_history_is_tokenised_once_and_prompts_stay_exact(wm):
    """Only the text after the last generation-prompt header is tokenised each step; the prompt fed must still be
    the chat template's tokens of the whole chat, through edits (observe, replace_last) and forks."""
    assert wm._split_token is not None, "the tiny ChatML tokenizer should allow incremental tokenising"
    h = wm.start(CONTEXTS[0])
    for i, action in enumerate(ACTIONS * 2):
        if i == 3:
            wm.observe(h, "look", "You are in the kitchen.")
        if i == 5:
            wm.replace_last(h, "A hall. [SUCCESS]")
        if i == 7:
            h = wm.fork(h)
        expected = wm.chat_ids(build_messages(CONTEXTS[0], wm.history(h), action))
        step = wm.step(h, action)
        assert wm._episodes[h].cached_ids[:len(expected)] == expected and step.extra["prompt_tokens"] == len(expected)
    assert wm._episodes[h].rendered[1], "the incremental path should have been taken"


def test_batch_with_a_fresh_long_prompt_equals_one_by_one(tiny_model_dir):
    """A row that starts its episode (a long system prompt, prefilled on its own) beside rows mid-episode: the
    same text as stepping each alone."""
    wm = load_world_model(tiny_model_dir, max_new_tokens=20)
    long_context = "Task: eat the apple\n" + "You are in a kitchen. There is a fridge and a table. " * 40
    batch, single = [wm.start(c) for c in CONTEXTS], [wm.start(c) for c in CONTEXTS]
    for t in range(3):
        if t == 2:
            batch.append(wm.start(long_context))
            single.append(wm.start(long_context))
        actions = [ACTIONS[(t + i) % len(ACTIONS)] for i in range(len(batch))]
        alone = []
        wm._prefill = lambda ep, ids, _prefill=wm._prefill: alone.append(len(ids)) or _prefill(ep, ids)
        got = wm.step_batch(batch, actions)
        del wm._prefill
        want = [wm.step(h, a) for h, a in zip(single, actions)]
        assert [s.text for s in got] == [s.text for s in want]
        assert [s.extra["completion_tokens"] for s in got] == [s.extra["completion_tokens"] for s in want]
    assert alone == [got[-1].extra["prompt_tokens"]], "the fresh long row (only) should have been prefilled alone"


def test_batch_buffers_grow_for_long_turns(tiny_model_dir, monkeypatch):
    """Turns longer than the room the batch buffers start with grow them (cache and mask) in place of failing."""
    from wmgym.worldmodels import hf_decode

    monkeypatch.setattr(hf_decode, "_TURN_ROOM", 2)
    wm = load_world_model(tiny_model_dir, max_new_tokens=30)
    handles, solo = [wm.start(c) for c in CONTEXTS], [wm.start(c) for c in CONTEXTS]
    for t in range(2):
        got = wm.step_batch(handles, ACTIONS[t:t + 3])
        want = [wm.step(h, a) for h, a in zip(solo, ACTIONS[t:t + 3])]
        assert [s.text for s in got] == [s.text for s in want]
    assert max(s.extra["completion_tokens"] for s in got) > 2 * 2
