"""The tiny preset's model: a small Llama trained from scratch, in named shapes (``PRESETS``).

``--model tiny`` builds it and its tokenizer (:mod:`.tokenizer`) from the
training trajectories and saves both as an ordinary HF model directory
(``config.json``, ``model.safetensors``, ``tokenizer.json``,
``tokenizer_config.json`` with a ChatML chat template), so
``AutoModelForCausalLM`` / ``AutoTokenizer`` load it and
``apply_chat_template`` works like for any hub model.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from wmgym.training.tiny.tokenizer import PRETOKENIZERS, build_tokenizer, save_tokenizer


@dataclasses.dataclass
class TinyPreset:
    """Shape of the tiny Llama (see ``PRESETS``)."""

    hidden_size: int = 128
    """Model width."""
    num_layers: int = 2
    """Transformer blocks."""
    num_heads: int = 4
    """Attention heads (head dim = hidden_size / num_heads)."""
    intermediate_size: int = 384
    """MLP width (SwiGLU)."""
    vocab_size: int = 4096
    """Upper bound of the BPE vocabulary; the trainer stops earlier when every repeated word is a token."""
    min_frequency: int = 2
    """A merge must occur this often in the training text."""
    max_position_embeddings: int = 4096
    """Longest chat (in tokens) the RoPE table is built for."""
    rope_theta: float = 10000.0
    """RoPE base."""
    pretokenizer: str = "entities"
    """How text is cut before BPE merges (see :mod:`.tokenizer`): ``words`` (words, digits, punctuation),
    ``entities`` (the same, but "apple 1" stays one piece) or ``entity-phrases`` (numbered entities and the text
    between them)."""
    turn_numbers: bool = False
    """Number the user turns in the chat template ("<|im_start|>user 3"; :func:`numbered_template`): the index of
    the current command is then read, not counted."""
    first_turn: int = 1
    """With ``turn_numbers``: the number of the first user turn. TextWorld's ``tiny-count`` starts at 2, so a
    header carries the turn count the game prints once that command is played (Inform counts the turn the game
    starts in), and with digits as their own tokens the count in the text is a copy of the header's number."""

    def __post_init__(self) -> None:
        if self.hidden_size % self.num_heads:
            raise ValueError(f"hidden_size={self.hidden_size} must be divisible by num_heads={self.num_heads}")
        if self.pretokenizer not in PRETOKENIZERS:
            raise ValueError(f"unknown pretokenizer {self.pretokenizer!r}; valid: {sorted(PRETOKENIZERS)}")
        if self.first_turn < 0:
            raise ValueError(f"first_turn={self.first_turn} must be >= 0")
        if self.vocab_size < 300:
            raise ValueError(f"vocab_size={self.vocab_size} must be >= 300 (256 bytes + special tokens + merges)")


#: Named presets; ``tiny`` is the CPU default. Smaller is better on 2 CPU cores: at a fixed wall-clock
#: budget the 2-layer d=128 model (~13k tokens/s on one core) beat the 3-layer d=192 and 4-layer d=256
#: ones (~6k and ~3k tokens/s) on held-out ALFWorld EM, and even matched them step for step.
PRESETS: dict[str, TinyPreset] = {
    "tiny": TinyPreset(),
    # The ALFWorld default: items sit two tokens behind their receptacle (train it with --induction-warmup).
    "tiny-phrases": TinyPreset(pretokenizer="entity-phrases"),
    # Numbered user turns (TextWorld prints the number of commands when the game ends).
    "tiny-turns": TinyPreset(turn_numbers=True),
    # The TextWorld default: user turns numbered with the count the game prints after the command, digits as
    # their own tokens ("user 5" ... "in 5 turns"), so the count is copied, not mapped from the header.
    "tiny-count": TinyPreset(pretokenizer="words", turn_numbers=True, first_turn=2),
    "tiny-s": TinyPreset(hidden_size=96, num_layers=2, num_heads=4, intermediate_size=256),
    "tiny-m": TinyPreset(hidden_size=256, num_layers=4, num_heads=8, intermediate_size=704),
    "tiny-l": TinyPreset(hidden_size=384, num_layers=6, num_heads=12, intermediate_size=1024),
}


def get_preset(name: str) -> TinyPreset:
    """Look up a preset by name."""
    if name not in PRESETS:
        raise ValueError(f"unknown tiny preset {name!r}; valid presets: {sorted(PRESETS)}")
    return dataclasses.replace(PRESETS[name])


def build_model(tokenizer: Any, preset: TinyPreset | None = None, seed: int = 0):
    """A freshly initialised ``LlamaForCausalLM`` sized by ``preset`` for ``tokenizer``."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    preset = preset or TinyPreset()
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=preset.hidden_size, intermediate_size=preset.intermediate_size,
        num_hidden_layers=preset.num_layers, num_attention_heads=preset.num_heads,
        num_key_value_heads=preset.num_heads, max_position_embeddings=preset.max_position_embeddings,
        rope_theta=preset.rope_theta, tie_word_embeddings=True,  # tied: copying a token = reading its own embedding
        pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id, bos_token_id=None,
        attn_implementation="sdpa",
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model


def build_tiny(chats: list[list[dict[str, str]]], preset: TinyPreset | str = "tiny", seed: int = 0):
    """Tokenizer trained on ``chats`` and a fresh model for it: ``(model, tokenizer)``."""
    if isinstance(preset, str):
        preset = get_preset(preset)
    tokenizer = build_tokenizer(chats, preset)
    return build_model(tokenizer, preset, seed=seed), tokenizer


def num_parameters(model: Any) -> int:
    """Parameter count (tied embeddings counted once)."""
    return sum(p.numel() for p in model.parameters())


def describe(model: Any, tokenizer: Any) -> str:
    """One line: size and shape of a model."""
    c = model.config
    return (f"{num_parameters(model) / 1e6:.2f}M params (Llama, {c.num_hidden_layers} layers, d={c.hidden_size}, "
            f"{c.num_attention_heads} heads, vocab {len(tokenizer)})")


def save_pretrained(model: Any, tokenizer: Any, out: str | Path, extra: dict[str, Any] | None = None) -> Path:
    """Save model (safetensors) and tokenizer as an HF directory, with ``wmgym.json`` metadata."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    save_tokenizer(tokenizer, out)
    if extra is not None:
        (out / "wmgym.json").write_text(json.dumps(extra, indent=2, sort_keys=True))
    return out
