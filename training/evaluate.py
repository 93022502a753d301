"""Teacher-forced single-step exact match of a causal LM world model.

Each gold observation is predicted from the gold history (system prompt, every
earlier action and gold observation, the current action). A step is an exact
match when greedy decoding reproduces the gold assistant turn (observation and
success marker) and then ends the turn.

Two ways to measure it:

- ``method="argmax"`` (fast, used during training): one forward pass over the
  gold chat. Greedy decoding from the gold prefix yields exactly the gold tokens
  iff the argmax at every position of the turn (its end-of-turn token included)
  is the gold token, so a whole episode is scored in one pass instead of one
  generation per step. It can only under-count: a different token sequence
  that decodes to the same text is scored a miss.
- ``method="generate"``: ``model.generate`` per step, decoded and compared after
  ``strip()``; the reference, slower by the number of tokens generated.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from typing import Any

from wmgym.training.data import IGNORE_INDEX, build_examples, episode_chats


@dataclasses.dataclass
class EMResult:
    """Exact match overall, per env and per step index (1-based), and token accuracy on observations."""

    em: float
    n_steps: int
    token_accuracy: float
    per_env: dict[str, float]
    per_step: dict[int, float]
    #: Mean cross-entropy per observation token (``argmax`` method only).
    loss: float = float("nan")

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _label_runs(labels: list[int]) -> list[tuple[int, int]]:
    runs, start = [], None
    for i, x in enumerate(labels + [IGNORE_INDEX]):
        if x != IGNORE_INDEX and start is None:
            start = i
        elif x == IGNORE_INDEX and start is not None:
            runs.append((start, i))
            start = None
    return runs


def _summarise(hits: list[tuple[str, int, bool]], tok_hit: int, tok_all: int) -> EMResult:
    by_env, by_step = defaultdict(list), defaultdict(list)
    for env, step, ok in hits:
        by_env[env].append(ok)
        by_step[step].append(ok)
    mean = lambda xs: sum(xs) / len(xs) if xs else 0.0  # noqa: E731
    return EMResult(em=mean([ok for _, _, ok in hits]), n_steps=len(hits),
                    token_accuracy=tok_hit / tok_all if tok_all else 0.0,
                    per_env={e: mean(v) for e, v in sorted(by_env.items())},
                    per_step={s: mean(v) for s, v in sorted(by_step.items())})


def argmax_em(model: Any, tokenizer: Any, episodes: list, max_length: int = 4096, batch_tokens: int | None = None,
              autocast: bool = False) -> EMResult:
    """Teacher-forced EM by one forward pass per chat (see module docstring).

    ``batch_tokens`` pads chats of similar length into batches (default: 16384 on a GPU, 8192 on CPU).
    """
    import torch

    if batch_tokens is None:
        batch_tokens = 16384 if next(model.parameters()).device.type == "cuda" else 8192

    examples, _ = build_examples(tokenizer, episodes, max_length)
    examples.sort(key=lambda e: len(e["input_ids"]))
    hits: list[tuple[str, int, bool]] = []
    tok_hit = tok_all = 0
    loss_sum = 0.0
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    i = 0
    with torch.no_grad():
        while i < len(examples):
            j = i + 1
            while j < len(examples) and (j - i + 1) * len(examples[j]["input_ids"]) <= batch_tokens:
                j += 1
            batch = examples[i:j]
            width = max(len(b["input_ids"]) for b in batch)
            ids = torch.full((len(batch), width), pad, dtype=torch.long)
            for k, b in enumerate(batch):
                ids[k, : len(b["input_ids"])] = torch.tensor(b["input_ids"])
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
                # Right padding + causal attention: no mask needed (and none keeps the fast attention kernel).
                logits = model(input_ids=ids.to(device)).logits
            pred = logits.argmax(-1).cpu()
            labels = torch.full_like(ids, IGNORE_INDEX)
            for k, b in enumerate(batch):
                labels[k, : len(b["labels"])] = torch.tensor(b["labels"])
            loss_sum += float(torch.nn.functional.cross_entropy(
                logits[:, :-1].flatten(0, 1).float(), labels[:, 1:].flatten().to(device),
                ignore_index=IGNORE_INDEX, reduction="sum"))
            for k, b in enumerate(batch):
                for step, (s, e) in enumerate(_label_runs(b["labels"]), b.get("first_step", 0) + 1):
                    gold = torch.tensor(b["labels"][s:e])
                    ok = pred[k, s - 1:e - 1] == gold
                    tok_hit += int(ok.sum())
                    tok_all += len(gold)
                    hits.append((b["env_id"], step, bool(ok.all())))
            i = j
    model.train(was_training)
    result = _summarise(hits, tok_hit, tok_all)
    result.loss = loss_sum / tok_all if tok_all else float("nan")
    return result


def generate_em(model: Any, tokenizer: Any, episodes: list, max_new_tokens: int = 256, max_steps: int | None = None,
                return_predictions: bool = False) -> EMResult | tuple[EMResult, list[dict[str, Any]]]:
    """Teacher-forced EM by greedy ``generate`` per step (the reference method)."""
    import torch

    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    hits, preds = [], []
    for env_id, messages in episode_chats(episodes):
        for t in range(2, len(messages), 2):  # messages[t] is the t/2-th assistant turn
            if max_steps is not None and len(hits) >= max_steps:
                break
            prompt = tokenizer.apply_chat_template(messages[:t], tokenize=False, add_generation_prompt=True)
            ids = tokenizer(prompt, add_special_tokens=False, return_tensors="pt")["input_ids"].to(device)
            with torch.no_grad():
                out = model.generate(ids, max_new_tokens=max_new_tokens, do_sample=False,
                                     eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
            text = tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True)
            gold = messages[t]["content"]
            ok = text.strip() == gold.strip()
            hits.append((env_id, t // 2, ok))
            if return_predictions:
                preds.append({"env_id": env_id, "step": t // 2, "action": messages[t - 1]["content"],
                              "gold": gold, "predicted": text, "match": ok})
    model.train(was_training)
    result = _summarise(hits, 0, 0)
    result.token_accuracy = float("nan")  # not measured by this method
    return (result, preds) if return_predictions else result
