"""Tiny Qwen2 models with random or memorised weights, for backend tests and latency benchmarks.

:func:`build_tiny_model` trains a byte-level BPE on some text, gives it the
tiny preset's ChatML template and special tokens, initialises a small
``Qwen2ForCausalLM`` and saves both as an ordinary HF model directory, so every
backend loads it the way it loads a released checkpoint. Qwen2, not the
preset's Llama: the released Word2World checkpoints are Qwen2 (q/k/v biases,
grouped KV heads), and these models are what the backends are tested on.
:func:`fit_tiny_model` then lets it memorise a few episodes, for tests whose
twin must play them back.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from wmgym.training.tiny.tokenizer import CHAT_TEMPLATE, SPECIAL_TOKENS, save_tokenizer


def byte_level_tokenizer(texts: Iterable[str], vocab_size: int = 512) -> Any:
    """A byte-level BPE (GPT-2 pre-tokenizer, as Qwen's) trained on ``texts``, with the ChatML template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(list(texts), trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                   additional_special_tokens=["<|im_start|>"])
    fast.chat_template = CHAT_TEMPLATE
    return fast


def tiny_config(vocab_size: int, *, hidden_size: int = 64, layers: int = 2, heads: int = 4, kv_heads: int = 2,
                intermediate_size: int = 128, max_positions: int = 4096, tokenizer: Any = None, **extra: Any) -> Any:
    """A small ``Qwen2Config`` (about 0.1M parameters plus embeddings at the defaults; ``extra`` goes to the config)."""
    from transformers import Qwen2Config

    ids = {} if tokenizer is None else {"eos_token_id": tokenizer.eos_token_id, "pad_token_id": tokenizer.pad_token_id,
                                         "bos_token_id": None}
    return Qwen2Config(vocab_size=vocab_size, hidden_size=hidden_size, num_hidden_layers=layers,
                       num_attention_heads=heads, num_key_value_heads=kv_heads, intermediate_size=intermediate_size,
                       max_position_embeddings=max_positions, tie_word_embeddings=True, **ids, **extra)


def build_tiny_model(out_dir: str | Path, texts: Iterable[str], *, vocab_size: int = 512, seed: int = 0,
                     **config: Any) -> Path:
    """Train a tokenizer on ``texts``, initialise a tiny Qwen2 model, save both to ``out_dir``."""
    import torch
    from transformers import Qwen2ForCausalLM

    tokenizer = byte_level_tokenizer(texts, vocab_size)
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(tiny_config(len(tokenizer), tokenizer=tokenizer, **config))
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    save_tokenizer(tokenizer, out)
    return out


def fit_tiny_model(model_dir: str | Path, chats: list[list[dict[str, str]]], *, steps: int = 100,
                   lr: float = 3e-3, seed: int = 0) -> list[float]:
    """Train the model in ``model_dir`` on ``chats`` (assistant turns only, labelled as SFT labels them) and save
    it back.

    A few full-batch AdamW steps on CPU: enough for a tiny model to memorise a
    handful of episodes, which is what tests of the twin need. Returns the losses.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from wmgym.training.data import IGNORE_INDEX, tokenize_chat

    torch.manual_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, use_safetensors=True, dtype=torch.float32)
    rows = [tokenize_chat(tokenizer, chat) for chat in chats]
    width = max(len(r.input_ids) for r in rows)
    pad = tokenizer.pad_token_id
    input_ids = torch.tensor([r.input_ids + [pad] * (width - len(r.input_ids)) for r in rows])
    labels = torch.tensor([r.labels + [IGNORE_INDEX] * (width - len(r.labels)) for r in rows])
    mask = torch.tensor([[1] * len(r.input_ids) + [0] * (width - len(r.input_ids)) for r in rows])
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    model.train()
    losses = []
    for _ in range(steps):
        loss = model(input_ids=input_ids, attention_mask=mask, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    model.eval()
    model.save_pretrained(model_dir, safe_serialization=True)
    return losses
