"""The tiny CPU preset: a domain tokenizer and a small Llama trained from scratch.

``--model tiny`` builds both from the training trajectories and saves them as
an ordinary HF model directory (``config.json``, ``model.safetensors``,
``tokenizer.json``, ``tokenizer_config.json`` with a ChatML chat template), so
``AutoModelForCausalLM`` / ``AutoTokenizer`` load it and ``apply_chat_template``
works like for any hub model.

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

Why the induction warm-up (``induction_warmup``): heads that look a token up by
its *content* (find where this token occurred before, copy what followed) form
late and suddenly; on world-model chats, where those lookups are a few percent
of the supervised tokens, they had not formed after 6M tokens and the twin
memorised its training scenes instead (ALFWorld train items 70-87% right,
held-out 10-18%). On a dense synthetic copying task (a random prefix, then
chunks of it copied from random places, so no fixed offset solves it) the same
model forms them after ~600 steps (~4 minutes on one core); SFT then starts
from a model that already copies, and the lookups into the initial state are
learnt in its first few hundred steps.

Why the list warm-up (``list_warmup``, after the induction warm-up): in a
listed receptacle the token before each item is a shared separator (", a"),
so the heads from the first warm-up, which match on one token, point at every
list at once; the item is found by the item *two* tokens back. A second
synthetic task of lists with shared separators trains that lookup (mixed into
the first task instead, no copying head formed in 1,000 steps).

Why the recall task (``recall_warmup``, and ``recall_task_batch`` mixed into
SFT by ``SFTConfig.recall_mix``): TextWorld copies prose, where every word
recurs ("You take the nest of| earwigs"), so a copy is keyed on several tokens
back and has to win over what the words usually continue with. A window of
text, then spans of it to continue from three given tokens, trains that: the
warm-up on the training chats' initial states (TextWorld copy accuracy 0.84
after 400 steps). SFT alone unlearns it (0.46 after 1,600 steps), so a share of
the SFT batches keeps doing it on windows of the tokenized chats (0.89).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

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
    """How text is cut before BPE merges (see the module doc): ``words`` (words, digits, punctuation),
    ``entities`` (the same, but "apple 1" stays one piece) or ``entity-phrases`` (numbered entities and the text
    between them)."""
    turn_numbers: bool = False
    """Number the user turns in the chat template ("<|im_start|>user 3"; :func:`numbered_template`): the index of
    the current command is then read, not counted."""
    first_turn: int = 1
    """With ``turn_numbers``: the number of the first user turn. TextWorld's ``tiny-count`` starts at 2, so a
    header carries the turn count the game prints once that command is played (Inform counts the turn the game
    starts in), and with digits as their own tokens the count in the text is a copy of the header's number."""
    copy_init: bool = False
    """Initialise every attention layer's output projection as the transpose of its (orthogonal) value
    projection, so attending to a token writes that token back: heads copy from the start and only have to
    learn where to look."""

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


def train_tokenizer(texts: Iterable[str], preset: TinyPreset | None = None):
    """Train a byte-level BPE on ``texts`` and wrap it as a ``PreTrainedTokenizerFast`` with the chat template."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    preset = preset or TinyPreset()
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
    if preset.copy_init:
        init_copying_heads(model)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model


def init_copying_heads(model: Any) -> None:
    """Set ``o_proj = v_proj^T`` with an orthogonal ``v_proj`` in every layer, so the OV circuit copies.

    Both keep the norm the default random init gives them (entries of std
    ``initializer_range``); only the direction changes: ``o_proj @ v_proj`` is a
    multiple of the identity instead of a random matrix.
    """
    import torch

    cfg = model.config
    scale = cfg.initializer_range * cfg.hidden_size ** 0.5
    with torch.no_grad():
        for layer in model.model.layers:
            v, o = layer.self_attn.v_proj.weight, layer.self_attn.o_proj.weight
            if v.shape[0] != v.shape[1] or o.shape != v.shape[::-1]:
                raise ValueError("copy_init needs as many value dims as hidden dims (no grouped KV heads)")
            torch.nn.init.orthogonal_(v)
            v.mul_(scale)
            o.copy_(v.t())


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
        preset = get_preset(preset)
    return train_tokenizer(chat_texts(chats, preset.turn_numbers, preset.first_turn), preset)


def build_tiny(chats: list[list[dict[str, str]]], preset: TinyPreset | str = "tiny", seed: int = 0):
    """Tokenizer trained on ``chats`` and a fresh model for it: ``(model, tokenizer)``."""
    if isinstance(preset, str):
        preset = get_preset(preset)
    tokenizer = build_tokenizer(chats, preset)
    return build_model(tokenizer, preset, seed=seed), tokenizer


def num_parameters(model: Any) -> int:
    return sum(p.numel() for p in model.parameters())


def describe(model: Any, tokenizer: Any) -> str:
    """One line: size and shape of a model."""
    c = model.config
    return (f"{num_parameters(model) / 1e6:.2f}M params (Llama, {c.num_hidden_layers} layers, d={c.hidden_size}, "
            f"{c.num_attention_heads} heads, vocab {len(tokenizer)})")


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


def save_pretrained(model: Any, tokenizer: Any, out: str | Path, extra: dict[str, Any] | None = None) -> Path:
    """Save model (safetensors) and tokenizer as an HF directory, with ``wmgym.json`` metadata."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    save_tokenizer(tokenizer, out)
    if extra is not None:
        (out / "wmgym.json").write_text(json.dumps(extra, indent=2, sort_keys=True))
    return out


def copy_task_batch(pool: Any, g: Any, batch_size: int, prefix: int, chunk: int, chunks: int,
                    separators: int = 0) -> tuple[Any, Any]:
    """``(ids, labels)`` of ``induction_warmup``'s task: ``batch_size`` sequences of ``prefix`` tokens drawn from
    ``pool`` (a 1-D tensor of token ids) with generator ``g``, then ``chunks`` runs copied from them; labels are
    -100 on the prefix and on each run's first token."""
    import torch

    ids, labels = [], []
    for _ in range(batch_size):
        x = pool[torch.randperm(len(pool), generator=g)[:prefix]]
        if separators:  # items at even places, separators (drawn from tokens that are not items) at odd ones
            seps = x[1:2 * separators:2].clone()
            x[1::2] = seps[torch.randint(0, separators, (prefix // 2,), generator=g)]
        seq, lab = [x], [torch.full((prefix,), -100)]
        for _ in range(chunks):
            start = int(torch.randint(0, prefix - chunk + 1, (1,), generator=g))
            if separators:
                start -= start % 2
            run = x[start:start + chunk]
            seq.append(run)
            lab.append(torch.cat([torch.tensor([-100]), run[1:]]))
        ids.append(torch.cat(seq))
        labels.append(torch.cat(lab))
    return torch.stack(ids), torch.stack(labels)


def induction_warmup(model: Any, tokenizer: Any, max_steps: int, target_accuracy: float = 0.95, batch_size: int = 32,
                     prefix: int = 64, chunk: int = 12, chunks: int = 6, lr: float = 3e-3, seed: int = 0,
                     progress: bool = False, on_step: Any = None, separators: int = 0) -> dict[str, Any]:
    """Train ``model`` on a synthetic copying task until its copy accuracy reaches ``target_accuracy``.

    Each sequence is ``prefix`` distinct random tokens of the vocabulary, then
    ``chunks`` runs of ``chunk`` tokens copied from random places of the prefix;
    every copied token after a run's first is a label. Only a head that finds
    the current token earlier in the sequence and copies its successor solves
    it (a run starts at a random offset), so this is where content-based
    induction heads form, ~600 steps for the tiny preset (see the module doc).
    With ``separators`` > 0 the sequences are lists instead: distinct
    random "items" with one of ``separators`` shared tokens between each two
    (``a , b ; c , d``), copied in runs that start at an item. After a
    separator the next item is found by the item *two* tokens back, which is
    how a listed object follows its receptacle in entity-phrase tokens
    (``countertop 1|, you see a| candle 2|, a| candle 1``).
    Stops at ``max_steps`` or once the running accuracy reaches the target;
    returns ``{"steps", "accuracy", "loss", "seconds"}``. ``on_step(step, loss, accuracy)`` is called after
    every step.
    """
    import torch

    special = set(tokenizer.all_special_ids)
    pool = torch.tensor([i for i in range(len(tokenizer)) if i not in special])
    if separators and not 0 < separators < prefix // 4:
        raise ValueError(f"separators={separators} must be between 1 and prefix // 4 - 1 = {prefix // 4 - 1}")
    if len(pool) < prefix:
        raise ValueError(f"the vocabulary has {len(pool)} tokens; the warm-up needs at least prefix={prefix}")
    g = torch.Generator().manual_seed(seed)
    return _train_copying(model, lambda: copy_task_batch(pool, g, batch_size, prefix, chunk, chunks, separators),
                          max_steps, target_accuracy, lr, "list warm-up" if separators else "induction warm-up",
                          progress, on_step)


def _train_copying(model: Any, make_batch: Any, max_steps: int, target_accuracy: float, lr: float, desc: str,
                   progress: bool, on_step: Any) -> dict[str, Any]:
    """The warm-ups' loop: AdamW on ``make_batch()`` batches until ``max_steps`` or a running copy accuracy of
    ``target_accuracy``; returns ``{"steps", "accuracy", "loss", "seconds"}``."""
    import time

    import torch

    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    device = next(model.parameters()).device
    model.train()
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=max_steps, desc=desc, unit="step")
    t0, acc, loss, step = time.time(), 0.0, float("nan"), 0
    while step < max_steps and acc < target_accuracy:
        ids, labels = make_batch()
        ids, labels = ids.to(device), labels.to(device)
        with torch.autocast(device.type, dtype=torch.bfloat16):
            out = model(input_ids=ids, labels=labels)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        keep = labels[:, 1:] != -100
        batch_acc = (out.logits[:, :-1].argmax(-1) == labels[:, 1:])[keep].float().mean().item()
        acc = batch_acc if step == 0 else 0.9 * acc + 0.1 * batch_acc  # running mean: one lucky batch does not stop it
        loss, step = out.loss.item(), step + 1
        if on_step is not None:
            on_step(step, loss, acc)
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.3f}", copy_acc=f"{acc:.2f}")
    if bar is not None:
        bar.close()
    opt.zero_grad(set_to_none=True)
    return {"steps": step, "accuracy": acc, "loss": loss, "seconds": time.time() - t0}


def recall_task_batch(texts: list[Any], g: Any, batch_tokens: int, window: int, span: int, spans: int,
                      cue: int) -> tuple[Any, Any]:
    """``(ids, labels)`` of ``recall_warmup``'s task: each sequence is a window of up to ``window`` tokens of one
    of ``texts`` (1-D tensors of token ids), then ``spans`` runs of ``span`` tokens copied from random places of
    the window; labels are -100 on the window and on each run's first ``cue`` tokens. Sequences are padded (label
    -100) to the longest, ``batch_tokens // (window + spans * span)`` of them (at least one)."""
    import torch

    size = max(1, batch_tokens // (window + spans * span))
    ids, labels = [], []
    for _ in range(size):
        text = texts[int(torch.randint(0, len(texts), (1,), generator=g))]
        if len(text) > window:
            start = int(torch.randint(0, len(text) - window + 1, (1,), generator=g))
            text = text[start:start + window]
        seq, lab = [text], [torch.full((len(text),), -100)]
        for _ in range(spans):
            start = int(torch.randint(0, max(1, len(text) - span + 1), (1,), generator=g))
            run = text[start:start + span]
            seq.append(run)
            lab.append(torch.cat([torch.full((min(cue, len(run)),), -100), run[cue:]]))
        ids.append(torch.cat(seq))
        labels.append(torch.cat(lab))
    width = max(len(x) for x in ids)
    pad = lambda x, v: torch.cat([x, torch.full((width - len(x),), v, dtype=x.dtype)])  # noqa: E731
    return torch.stack([pad(x, 0) for x in ids]), torch.stack([pad(x, -100) for x in labels])


def recall_warmup(model: Any, texts: list[Any], max_steps: int, batch_tokens: int = 4096, window: int = 1024,
                  span: int = 24, spans: int = 16, cue: int = 3, lr: float = 3e-3, seed: int = 0,
                  progress: bool = False, on_step: Any = None) -> dict[str, Any]:
    """Train ``model`` to continue a span of natural text it has seen earlier in the sequence.

    The synthetic tasks of ``induction_warmup`` copy distinct random tokens,
    where the previous token alone says where to look. In an env's own text
    ("You take the nest of| earwigs", a room paragraph copied out of the
    initial state) the same words recur everywhere, so a copy has to be keyed
    on several tokens back and win over what the words usually continue with.
    Here each sequence is a window of an env text (``texts``: the initial
    states of the training chats, as token ids), then ``spans`` runs copied
    from random places of it; the first ``cue`` tokens of a run are given, the
    rest are labels. Returns ``{"steps", "accuracy", "loss", "seconds"}`` like
    ``induction_warmup`` (accuracy: running mean of the copied tokens predicted right).
    """
    import torch

    if not texts:
        raise ValueError("the recall warm-up needs at least one text")
    g = torch.Generator().manual_seed(seed)
    return _train_copying(model, lambda: recall_task_batch(texts, g, batch_tokens, window, span, spans, cue),
                          max_steps, float("inf"), lr, "recall warm-up", progress, on_step)
