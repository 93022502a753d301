"""The tiny preset's tokenizer: a byte-level BPE trained on the env's own text, with a ChatML template.

Why the tokenizer looks the way it does: world-model observations mostly copy
names out of the action or the history ("take apple 1 from countertop 1" ->
"You pick up the apple 1 from the countertop 1."). Copying one token is a
single attention lookup; copying a name split into sub-word pieces needs the
model to chain several lookups, which a small model learns late or never. So
the pre-tokenizer cuts words (with their leading space) and single digits, and
the BPE vocabulary is large enough that every word the data uses more than
once is one token. Unseen words still encode, byte by byte (byte-level BPE),
so any text round-trips exactly.

The ``tiny-phrases`` preset cuts further ("entity-phrases"): a numbered entity ("countertop 1")
is one piece and the text between two entities (", you see a") is another, so
"On the countertop 1, you see a candle 2, a candle 1." becomes
``On the | countertop 1 | , you see a | candle 2 | , a | candle 1 | .`` and
every item of a listed receptacle sits at the same offset behind its key: the
entity two tokens back. Looking that up in the initial state is one induction
head that matches on the previous tokens, where word pieces put the key three
to nine tokens back depending on the sentence.

Numbered chat templates (``TinyPreset.turn_numbers``) open each user turn with
its index ("<|im_start|>user 3"), for envs whose text counts the player's
commands; :func:`chat_texts` trains each header as one token.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from wmgym.training.tiny.model import TinyPreset


def _chatml(user_header: str) -> str:
    """ChatML with ``user_header`` (Jinja) opening each user turn. The ``generation`` tags let
    ``apply_chat_template(return_assistant_tokens_mask=True)`` work."""
    return (
        "{% for message in messages %}"
        + user_header +
        "{% if message['role'] == 'assistant' %}{% generation %}{{ message['content'] + '<|im_end|>' }}{% endgeneration %}"
        "{{ '\n' }}{% else %}{{ message['content'] + '<|im_end|>' + '\n' }}{% endif %}"
        "{% endfor %}"
        "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
    )


#: ChatML (the Qwen2.5 format of the released Word2World checkpoints).
CHAT_TEMPLATE = _chatml("{{ '<|im_start|>' + message['role'] + '\n' }}")


def numbered_template(first_turn: int = 1) -> str:
    """ChatML with the user turns numbered from ``first_turn`` ("<|im_start|>user 3"): the turn index as a token,
    for envs whose text counts the player's commands (TextWorld's "in 4 turns"), which a 2-layer model does not
    learn to count."""
    return f"{{% set ns = namespace(turn={first_turn - 1}) %}}" + _chatml(
        "{% if message['role'] == 'user' %}{% set ns.turn = ns.turn + 1 %}{{ '<|im_start|>user ' ~ ns.turn ~ '\n' }}"
        "{% else %}{{ '<|im_start|>' + message['role'] + '\n' }}{% endif %}")

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
#: Words (with their leading space), single digits, punctuation runs, whitespace runs.
PRETOKENIZE_REGEX = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
#: The same, but a word followed by a number stays one piece ("apple 1", "drawer 12"), so an entity
#: name can become one token.
ENTITY_REGEX = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+ \p{N}+(?!\p{L})| ?\p{L}+| ?\p{N}| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
_ENTITY = r"[^\S\n]?\p{L}+ \p{N}+(?!\p{L})"
#: Numbered entities, and the text of a line between them, as pieces ("On the| countertop 1|, you see a| candle 2").
ENTITY_PHRASE_REGEX = rf"""\n+|{_ENTITY}|(?:(?!{_ENTITY})[^\n])+"""
#: Pre-tokenizers of ``TinyPreset.pretokenizer``.
PRETOKENIZERS = {"words": PRETOKENIZE_REGEX, "entities": ENTITY_REGEX, "entity-phrases": ENTITY_PHRASE_REGEX}


def train_tokenizer(texts: Iterable[str], preset: TinyPreset | None = None):
    """Train a byte-level BPE on ``texts`` and wrap it as a ``PreTrainedTokenizerFast`` with the chat template."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    if preset is None:
        from wmgym.training.tiny.model import TinyPreset

        preset = TinyPreset()
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(PRETOKENIZERS[preset.pretokenizer]), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=preset.vocab_size, min_frequency=preset.min_frequency,
                                  special_tokens=SPECIAL_TOKENS, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(texts, trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=None, eos_token="<|im_end|>",
                                   pad_token="<|endoftext|>", unk_token=None,
                                   chat_template=(numbered_template(preset.first_turn) if preset.turn_numbers
                                                  else CHAT_TEMPLATE),
                                   clean_up_tokenization_spaces=False)


def chat_texts(chats: Iterable[list[dict[str, str]]], turn_numbers: bool = False,
               first_turn: int = 1) -> Iterable[str]:
    """The message contents of ``chats`` (what the tokenizer is trained on), plus the role names (and, with
    ``turn_numbers``, each numbered user header from ``first_turn`` on, so "user 3" is one piece)."""
    yield "system user assistant"
    for chat in chats:
        turn = first_turn - 1
        for m in chat:
            if turn_numbers and m["role"] == "user":
                turn += 1
                yield f"user {turn}"
            yield m["content"]


def build_tokenizer(chats: Iterable[list[dict[str, str]]], preset: TinyPreset | str = "tiny"):
    """The tokenizer of ``preset`` trained on ``chats`` (their texts and, with turn numbers, their headers)."""
    if isinstance(preset, str):
        from wmgym.training.tiny.model import get_preset

        preset = get_preset(preset)
    return train_tokenizer(chat_texts(chats, preset.turn_numbers, preset.first_turn), preset)


def save_tokenizer(tokenizer: Any, out: str | Path) -> Path:
    """Save a tokenizer with its chat template inside ``tokenizer_config.json``.

    The template goes into the JSON (not a separate ``chat_template.jinja``) and
    the class is named ``PreTrainedTokenizerFast``, so transformers 4 and 5 and
    vLLM all load the directory.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(out, save_jinja_files=False)
    cfg_path = out / "tokenizer_config.json"
    cfg = json.loads(cfg_path.read_text())
    if cfg.get("tokenizer_class") == "TokenizersBackend":
        cfg["tokenizer_class"] = "PreTrainedTokenizerFast"
        cfg_path.write_text(json.dumps(cfg, indent=2, ensure_ascii=False))
    return out
