"""Tiny from-scratch world models in Qwen2's architecture, for tests and CPU benchmarks.

:func:`build_tiny_model` trains a byte-level BPE tokenizer on some text with
the ``tokenizers`` library, gives it Qwen's ChatML chat template and special
tokens, initialises a small ``Qwen2ForCausalLM`` and saves both as an ordinary
HF model directory (``config.json``, ``model.safetensors``, tokenizer files),
so every backend loads it the way it loads a released checkpoint.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

#: Qwen2.5's ChatML layout, without the tool-calling branches and the default system prompt.
CHATML_TEMPLATE = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def train_tokenizer(texts: Iterable[str], vocab_size: int = 512) -> Any:
    """A byte-level BPE tokenizer (Qwen-style) trained on ``texts``, with the ChatML template."""
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
    fast.chat_template = CHATML_TEMPLATE
    return fast


def tiny_config(vocab_size: int, *, hidden_size: int = 64, layers: int = 2, heads: int = 4, kv_heads: int = 2,
                intermediate_size: int = 128, max_positions: int = 4096, tokenizer: Any = None) -> Any:
    """A small ``Qwen2Config`` (about 0.1M parameters plus embeddings at the defaults)."""
    from transformers import Qwen2Config

    ids = {} if tokenizer is None else {"eos_token_id": tokenizer.eos_token_id, "pad_token_id": tokenizer.pad_token_id,
                                         "bos_token_id": None}
    return Qwen2Config(vocab_size=vocab_size, hidden_size=hidden_size, num_hidden_layers=layers,
                       num_attention_heads=heads, num_key_value_heads=kv_heads, intermediate_size=intermediate_size,
                       max_position_embeddings=max_positions, tie_word_embeddings=True, **ids)


def build_tiny_model(out_dir: str | Path, texts: Iterable[str], *, vocab_size: int = 512, seed: int = 0,
                     **config: Any) -> Path:
    """Train a tokenizer on ``texts``, initialise a tiny Qwen2 model, save both to ``out_dir``."""
    import torch
    from transformers import Qwen2ForCausalLM

    tokenizer = train_tokenizer(texts, vocab_size)
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(tiny_config(len(tokenizer), tokenizer=tokenizer, **config))
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    return out
