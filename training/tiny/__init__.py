"""The tiny CPU preset: a domain tokenizer and a small Llama trained from scratch, and the warm-ups that
teach a fresh one to copy before SFT.

- :mod:`.tokenizer`: the byte-level BPE, its pre-tokenizers and (numbered) ChatML templates.
- :mod:`.model`: the named shapes (``PRESETS``), building and saving the model.
- :mod:`.warmups`: the synthetic copy tasks (induction, lists, recall) and their training loop.
- :mod:`.qwen2`: tiny Qwen2 models with random or memorised weights, for backend tests and latency benchmarks.
"""

from __future__ import annotations

from wmgym.training.tiny.model import (PRESETS, TinyPreset, build_model, build_tiny, describe, get_preset,
                                       num_parameters, save_pretrained)
from wmgym.training.tiny.qwen2 import build_tiny_model, fit_tiny_model
from wmgym.training.tiny.tokenizer import (CHAT_TEMPLATE, ENTITY_PHRASE_REGEX, ENTITY_REGEX, PRETOKENIZE_REGEX,
                                           PRETOKENIZERS, SPECIAL_TOKENS, build_tokenizer, chat_texts,
                                           numbered_template, save_tokenizer, train_tokenizer)
from wmgym.training.tiny.warmups import copy_task_batch, induction_warmup, recall_task_batch, recall_warmup

__all__ = [
    "CHAT_TEMPLATE", "ENTITY_PHRASE_REGEX", "ENTITY_REGEX", "PRESETS", "PRETOKENIZERS", "PRETOKENIZE_REGEX",
    "SPECIAL_TOKENS", "TinyPreset", "build_model", "build_tiny", "build_tiny_model", "build_tokenizer", "chat_texts",
    "copy_task_batch", "describe", "fit_tiny_model", "get_preset", "induction_warmup", "num_parameters",
    "numbered_template", "recall_task_batch", "recall_warmup", "save_pretrained", "save_tokenizer",
    "train_tokenizer",
]
