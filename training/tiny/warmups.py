"""Warm-ups of a fresh tiny model: synthetic copy tasks trained before SFT, and their shared loop.

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

from typing import Any


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
                     progress: bool = False, on_step: Any = None, separators: int = 0,
                     bf16: bool | None = None) -> dict[str, Any]:
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
    every step. ``bf16``: autocast to bfloat16 (default: where it is fast, as SFT decides it:
    :func:`wmgym.training.sft_trainer.bf16_supported`; on a CPU without AVX512-BF16/AMX a bf16 step is
    ~7x slower than a float32 one).
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
                          progress, on_step, bf16)


def _train_copying(model: Any, make_batch: Any, max_steps: int, target_accuracy: float, lr: float, desc: str,
                   progress: bool, on_step: Any, bf16: bool | None = None) -> dict[str, Any]:
    """The warm-ups' loop: AdamW on ``make_batch()`` batches until ``max_steps`` or a running copy accuracy of
    ``target_accuracy``; returns ``{"steps", "accuracy", "loss", "seconds"}``. ``bf16``: autocast to bfloat16
    (``None``: where the hardware makes it fast)."""
    import time

    import torch

    if bf16 is None:
        from wmgym.training.sft_trainer import bf16_supported

        bf16 = bf16_supported()

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
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
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
                  progress: bool = False, on_step: Any = None, bf16: bool | None = None) -> dict[str, Any]:
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
    ``induction_warmup`` (accuracy: running mean of the copied tokens predicted right); ``bf16`` as there.
    """
    import torch

    if not texts:
        raise ValueError("the recall warm-up needs at least one text")
    g = torch.Generator().manual_seed(seed)
    return _train_copying(model, lambda: recall_task_batch(texts, g, batch_tokens, window, span, spans, cue),
                          max_steps, float("inf"), lr, "recall warm-up", progress, on_step, bf16)
