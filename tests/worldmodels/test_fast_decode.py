"""The lean decode forward (worldmodels/fast_llama.py): HF's logits, HF's greedy text, HF as the fallback."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from wmgym.worldmodels import kvcache
from wmgym.worldmodels.fast_llama import lean_decoder
from wmgym.worldmodels.hf import HFWorldModel

ACTIONS = ["open fridge", "go north", "take key from box", "inventory", "eat apple", "look"]
CONTEXTS = ["Task: eat the apple\n- You are in the kitchen.", "You are in a hall.", "go"]


def _llama_default_shape(**extra):
    """A LlamaForCausalLM shaped like the embedded default twins (2 layers, d=128, 4 heads, vocab 2648, tied),
    initialised wide so that logits differ clearly between tokens."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    settings = dict(vocab_size=2648, hidden_size=128, intermediate_size=384, num_hidden_layers=2,
                    num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=4096,
                    tie_word_embeddings=True, initializer_range=0.3, attn_implementation="sdpa")
    config = LlamaConfig(**{**settings, **extra})
    return LlamaForCausalLM(config).eval()


def _qwen2_gqa():
    """A Qwen2 model with grouped-query attention (4 query heads on 2 key-value heads) and q/k/v biases."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(1)
    config = Qwen2Config(vocab_size=500, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
                         initializer_range=0.3, attn_implementation="sdpa")
    return Qwen2ForCausalLM(config).eval()


@pytest.mark.parametrize("build", [_llama_default_shape, _qwen2_gqa], ids=["llama-default-shape", "qwen2-gqa"])
def test_lean_logits_equal_hf_with_left_padding_and_dropped_rows(build):
    """Decode steps over a left-padded batch, a finished row dropped midway, then a batch with no padding: the
    lean forward's logits and cache equal HF's forward on the same cache."""
    torch.set_num_threads(1)
    model = build()
    lean = lean_decoder(model)
    assert lean is not None
    gen = torch.Generator().manual_seed(0)
    vocab = model.config.vocab_size
    with torch.inference_mode():
        rows, length = 4, 40
        ids = torch.randint(0, vocab, (rows, length), generator=gen)
        mask = torch.ones(rows, length, dtype=torch.long)
        mask[1, :9], mask[3, :25] = 0, 0  # left padding
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        hf_cache = kvcache.new_cache()
        model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True, cache=hf_cache)
        lean_cache = kvcache.clone(hf_cache)
        pos = positions[:, -1:]
        for step in range(6):
            if step == 3:  # row 1 finished: both caches drop it
                keep = [0, 2, 3]
                kvcache.select_rows(hf_cache, keep)
                kvcache.select_rows(lean_cache, keep)
                mask, pos = mask[keep], pos[keep]
            token = torch.randint(0, vocab, (mask.shape[0], 1), generator=gen)
            mask = torch.cat([mask, mask.new_ones(mask.shape[0], 1)], dim=1)
            pos = pos + 1
            want = model(input_ids=token, attention_mask=mask, position_ids=pos, use_cache=True, cache=hf_cache,
                         logits_to_keep=1).logits[:, -1]
            got = lean.forward(token, pos, lean_cache, mask.bool()[:, None, None, :])
            torch.testing.assert_close(got, want, atol=1e-4, rtol=0)
            assert want.std() > 1.0  # logits that tell tokens apart: equality means something
        for a, b in zip(hf_cache.layers, lean_cache.layers):
            torch.testing.assert_close(a.keys, b.keys, atol=1e-5, rtol=0)
            torch.testing.assert_close(a.values, b.values, atol=1e-5, rtol=0)

        # Rows without padding: HF drops the all-ones mask, the lean forward takes none.
        ids = torch.randint(0, vocab, (2, 30), generator=gen)
        hf_cache = kvcache.new_cache()
        model(input_ids=ids, use_cache=True, cache=hf_cache)
        lean_cache = kvcache.clone(hf_cache)
        for step in range(3):
            token = torch.randint(0, vocab, (2, 1), generator=gen)
            pos = torch.full((2, 1), 30 + step)
            want = model(input_ids=token, attention_mask=torch.ones(2, 31 + step, dtype=torch.long),
                         position_ids=pos, use_cache=True, cache=hf_cache, logits_to_keep=1).logits[:, -1]
            torch.testing.assert_close(lean.forward(token, pos, lean_cache, None), want, atol=1e-4, rtol=0)


def test_models_the_lean_forward_does_not_mirror_fall_back_to_hf(tiny_model_dir):
    """Eager attention (a different softmax path) gets no lean decoder, and the backend still steps through HF."""
    model = _llama_default_shape()
    assert lean_decoder(model) is not None
    eager = _llama_default_shape()
    eager.config._attn_implementation = "eager"
    assert lean_decoder(eager) is None
    wm = HFWorldModel(tiny_model_dir, max_new_tokens=8)
    assert wm.lean is not None  # the tiny Qwen2 of the other hf tests decodes through the lean path
    wm.model.config._attn_implementation = "eager"
    try:
        assert lean_decoder(wm.model) is None
    finally:
        wm.model.config._attn_implementation = "sdpa"


def _pair(path, **settings):
    """Two backends over the same checkpoint: the lean decode path, and HF's forward only."""
    lean, hf = HFWorldModel(path, **settings), HFWorldModel(path, **settings)
    assert lean.lean is not None
    hf.lean = None
    return lean, hf


def test_step_batch_text_equals_hf_path(trained_textworld_model_dir):
    """Batched and single steps, an edited chat, rows ending at different lengths: the same tokens and
    log-probs as HF's forward."""
    lean, hf = _pair(trained_textworld_model_dir, max_new_tokens=40)
    handles = {wm: [wm.start(c) for c in CONTEXTS] for wm in (lean, hf)}
    solo = {wm: wm.start(CONTEXTS[0]) for wm in (lean, hf)}
    lengths = set()
    for t in range(4):
        actions = [ACTIONS[(t + i) % len(ACTIONS)] for i in range(len(CONTEXTS))]
        got, want = (wm.step_batch(handles[wm], actions) + [wm.step(solo[wm], actions[0])] for wm in (lean, hf))
        assert [s.extra["token_ids"] for s in got] == [s.extra["token_ids"] for s in want]
        assert [s.text for s in got] == [s.text for s in want]
        for g, w in zip(got, want):
            assert g.extra["token_logprobs"] == pytest.approx(w.extra["token_logprobs"], abs=1e-5)
        lengths.update(s.extra["completion_tokens"] for s in got)
        if t == 1:
            for wm in (lean, hf):
                wm.replace_last(handles[wm][1], "A hall. [SUCCESS]")
    assert len(lengths) > 2, "rows should finish at different lengths, or dropping finished rows goes untested"


def test_twin_episodes_play_the_same_text_as_the_hf_path(trained_textworld_model_dir):
    """A real twin (the tiny model trained on TextWorld expert episodes), one env and a make_vec of three, random
    admissible actions: every observation equals the one HF's forward gives."""
    lean, hf = _pair(trained_textworld_model_dir, max_new_tokens=48)
    seen = {}
    for wm in (lean, hf):
        rng = np.random.default_rng(0)
        env = gym.make("WM-TextWorld-v0", model=wm)
        obs, info = env.reset(seed=0, options={"game": 2})
        texts = [obs]
        for _ in range(5):
            commands = info["admissible_commands"] or ["look"]
            obs, _, terminated, truncated, info = env.step(commands[int(rng.integers(len(commands)))])
            texts.append(obs)
            if terminated or truncated:
                break
        vec = gym.make_vec("WM-TextWorld-v0", num_envs=3, model=wm, autoreset_mode="Disabled")
        obs, infos = vec.reset(seed=0, options={"game": 2})
        texts += list(obs)
        for _ in range(4):
            actions = tuple(c[int(rng.integers(len(c)))] if len(c) else "look" for c in infos["admissible_commands"])
            obs, _, terminated, truncated, infos = vec.step(actions)
            texts += list(obs)
            if (terminated | truncated).any():
                break
        vec.close()
        seen[wm] = texts
    assert len(seen[lean]) > 8
    assert seen[lean] == seen[hf]


def test_rows_sharing_a_long_prompt_prefix_decode_as_the_hf_path(trained_textworld_model_dir,
                                                                  textworld_expert_episodes, monkeypatch):
    """Rows on two games (two long system prompts, three rows each) beside a row with a short one, a fresh row
    joining midway (its prompt's keys copied from a row of its game): each game's prompt is read once per token
    (hf_shared), and the tokens equal HF's forward's."""
    from wmgym.worldmodels import hf_shared

    contexts = [e.init_context for e in textworld_expert_episodes]
    lean, hf = _pair(trained_textworld_model_dir, max_new_tokens=40)
    assert min(len(lean.tokenizer(c)["input_ids"]) for c in contexts) > hf_shared.MIN_SHARED
    groups = []
    original = hf_shared.decode_shared
    monkeypatch.setattr(hf_shared, "decode_shared", lambda *args: groups.append(len(args[-1])) or original(*args))
    handles = {wm: [wm.start(c) for c in contexts * 3] + [wm.start("You are in a hall.")] for wm in (lean, hf)}
    plays = ["look", "inventory", "go west", "open box", "take key", "go east"]
    for t in range(4):
        prefills = {lean: [], hf: []}
        if t == 2:
            for wm in (lean, hf):
                handles[wm].append(wm.start(contexts[1]))
                wm._prefill = lambda ep, ids, wm=wm, _prefill=wm._prefill: prefills[wm].append(1) or _prefill(ep, ids)
        actions = [plays[(t + i) % len(plays)] for i in range(len(handles[lean]))]
        got, want = (wm.step_batch(handles[wm], actions) for wm in (lean, hf))
        if t == 2:  # HF prefills the fresh row's system prompt; the lean path copies it from a row of its game
            assert (prefills[lean], prefills[hf]) == ([], [1])
            del lean._prefill, hf._prefill
        assert [s.extra["token_ids"] for s in got] == [s.extra["token_ids"] for s in want]
        for g, w in zip(got, want):
            assert g.extra["token_logprobs"] == pytest.approx(w.extra["token_logprobs"], abs=1e-4)
    # From the first step on: one row of each game is prefilled, the others copy its system prompt's keys.
    assert groups == [2, 2, 2, 2]


def test_positions_past_the_rope_table_use_the_rotary_module():
    """The lean forward looks RoPE up in a table of the model's positions; past it (a context longer than the
    config says) it computes them as HF does, and the logits still equal HF's."""
    model = _llama_default_shape(max_position_embeddings=32)
    lean = lean_decoder(model)
    with torch.inference_mode():
        ids = torch.randint(0, 2648, (2, 40), generator=torch.Generator().manual_seed(3))
        hf_cache = kvcache.new_cache()
        model(input_ids=ids, use_cache=True, cache=hf_cache)
        lean_cache = kvcache.clone(hf_cache)
        for pos in (40, 41):
            token, positions = ids[:, :1], torch.full((2, 1), pos)
            want = model(input_ids=token, position_ids=positions, use_cache=True, cache=hf_cache,
                         logits_to_keep=1).logits[:, -1]
            torch.testing.assert_close(lean.forward(token, positions, lean_cache, None), want, atol=1e-4, rtol=0)
        assert lean._rope_table is not None and len(lean._rope_table[0]) == 32


def test_prompt_lookup_drafts_copy_what_followed_the_latest_occurrence():
    from wmgym.worldmodels.hf_shared import _Context

    ctx = _Context([5, 1, 2, 3, 9, 9, 1, 2, 3, 7, 8, 4, 1, 2], room=8)
    assert ctx.draft(3, k=3) == [7, 8, 4]  # "1 2 3" last seen before "7 8 4" (not the earlier "9 9")
    assert ctx.draft(3, k=10) == [7, 8, 4, 1, 2]  # up to the end of the context
    assert ctx.draft(6, k=3) == []  # "1 2 6" never occurred
    ctx.extend([3, 7])  # the context now ends "1 2 3 7"; the tail looked up is its last two tokens + the pick
    assert ctx.draft(8, k=3) == [4, 1, 2]  # "3 7 8" occurred before "4 1 2"
    assert ctx.draft(9, k=3) == []
    assert _Context([1, 2, 3, 1, 2], room=4).draft(3, k=5) == [1, 2]  # a repeat runs into itself
    assert _Context([1, 2], room=4).draft(3, k=5) == []


def test_prompt_lookup_decoding_gives_the_token_by_token_text(trained_textworld_model_dir, textworld_expert_episodes):
    """Batches whose observations repeat their context (a second ``look``, ``inventory``): drafts copied from the
    context are verified in one forward, and every token and log-prob equals decoding token by token, on the
    lean path without drafts and on HF's forward; rows of one game, of several, and a row alone in its game."""
    contexts = [e.init_context for e in textworld_expert_episodes][:2]
    lean, hf = _pair(trained_textworld_model_dir, max_new_tokens=40)
    plain = HFWorldModel(trained_textworld_model_dir, max_new_tokens=40, prompt_lookup=0)
    assert lean.settings.prompt_lookup > 0
    backends = (lean, plain, hf)
    handles = {wm: [wm.start(c) for c in contexts * 2] + [wm.start("You are in a hall.")] for wm in backends}
    plays = ["look", "inventory", "look", "go west", "inventory", "look"]
    drafted = 0
    for t in range(len(plays)):
        actions = [plays[(t + i) % len(plays)] for i in range(len(handles[lean]))]
        got, flat, want = (wm.step_batch(handles[wm], actions) for wm in backends)
        for other in (flat, want):
            assert [s.extra["token_ids"] for s in got] == [s.extra["token_ids"] for s in other]
            for g, w in zip(got, other):
                assert g.extra["token_logprobs"] == pytest.approx(w.extra["token_logprobs"], abs=1e-4)
        assert all(s.extra["drafted_tokens"] == 0 for s in flat + want)
        drafted += sum(s.extra["drafted_tokens"] for s in got)
        # The caches the drafted batch left behind are those of decoding token by token (the next step reuses them).
        for h_lean, h_plain in zip(handles[lean], handles[plain]):
            a, b = lean._episode(h_lean), plain._episode(h_plain)
            assert a.cached_ids == b.cached_ids
            for la, lb in zip(a.cache.layers, b.cache.layers):
                torch.testing.assert_close(la.keys, lb.keys, atol=1e-4, rtol=0)
    assert drafted > 20, "the repeated observations should be written largely from drafts"
