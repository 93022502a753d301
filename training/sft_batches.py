"""SFT's data: the episodes a run trains and scores on, and every batch in the order the Trainer reads them.

Batches group examples of similar length up to ``batch_tokens`` padded tokens
(:func:`token_batches`); :func:`schedule` lays out the whole run (curriculum
windows first, then shuffled epochs of the chats) from the seed, so a resumed
run skips exactly the batches it trained on; :func:`mix_recall` swaps an even
share of them for recall-task batches.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from wmgym.training.sft import SFTConfig


def load_data(cfg: SFTConfig) -> tuple[list, list, Any]:
    """Training and held-out episodes (after the mix) and the mix report (or ``None``)."""
    from wmgym.training.data import check_mix, group_by_env, mix_sample, parse_mix, split_by_game
    from wmgym.training.trajectories import canonical_order, check_formats, load_episodes

    # In a canonical order, so the same episodes train the same model whatever order their files hold them in.
    episodes = canonical_order(load_episodes(cfg.data))
    if cfg.eval_data:
        train, held = episodes, canonical_order(load_episodes(cfg.eval_data))
    else:
        train, held = split_by_game(episodes, cfg.eval_fraction, cfg.seed)
    check_formats(train + held)  # one rendering per model: mixed formats are refused, naming the counts
    report = None
    if cfg.mix:
        by_env = group_by_env(train)
        report = check_mix(parse_mix(cfg.mix), by_env, cfg.allow_missing)
        train = mix_sample(by_env, report.weights, cfg.seed)
        held = [ep for ep in held if ep.env_id in report.weights]
    if not any(ep.steps for ep in train):
        raise ValueError(f"no episode with steps in {cfg.data}: nothing to train on")
    return train, held, report



def token_batches(examples: list[dict[str, Any]], batch_tokens: int, seed: int) -> list[list[dict[str, Any]]]:
    """Group examples of similar length into batches of at most ``batch_tokens`` padded tokens."""
    import numpy as np

    rng = np.random.default_rng(seed)
    # Sort by length with a little noise so batches differ between runs of similar lengths.
    order = sorted(range(len(examples)), key=lambda i: len(examples[i]["input_ids"]) * (1 + 0.1 * rng.random()))
    batches, cur, width = [], [], 0
    for i in order:
        n = len(examples[i]["input_ids"])
        if cur and max(width, n) * (len(cur) + 1) > batch_tokens:
            batches.append(cur)
            cur, width = [], 0
        cur.append(examples[i])
        width = max(width, n)
    if cur:
        batches.append(cur)
    return batches


def schedule(examples: list[dict[str, Any]], phases: list[tuple[list[dict[str, Any]], float]], cfg: SFTConfig,
             n_batches: int) -> list[list[dict[str, Any]]]:
    """Every batch of the run in order: each curriculum phase ``(examples, fraction of the batches)`` in turn,
    then shuffled epochs of the chats.

    The order is fixed by ``cfg.seed`` (the Trainer reads it sequentially), so a resumed run skips exactly
    the batches it already trained on.
    """
    import numpy as np

    rng = np.random.default_rng(cfg.seed)
    out: list[list[dict[str, Any]]] = []
    for k, (ex, fraction) in enumerate(phases):
        end = min(n_batches, len(out) + int(fraction * n_batches)) if ex else len(out)
        epoch = 0
        while len(out) < end:
            group = token_batches(ex, cfg.batch_tokens, cfg.seed + 1000 * (k + 1) + epoch)
            if not group:
                raise ValueError(f"curriculum phase {k + 1} has no example that fits max_length={cfg.max_length}")
            out.extend(group[i] for i in rng.permutation(len(group)))
            epoch += 1
        del out[end:]
    epoch = 0
    while len(out) < n_batches:
        group = token_batches(examples, cfg.batch_tokens, cfg.seed + epoch)
        out.extend(group[i] for i in rng.permutation(len(group)))
        epoch += 1
    return out[:n_batches]


def mix_recall(batches: list[list[dict[str, Any]]], examples: list[dict[str, Any]], fraction: float,
               batch_tokens: int, seed: int) -> int:
    """Replace every ``1 / fraction``-th batch (in place) by a recall batch drawn from the examples' token ids,
    the same ones for the same seed (so a resumed run trains on the batches it would have); returns how many."""
    import torch

    from wmgym.training.tiny import recall_task_batch

    texts = [torch.tensor(e["input_ids"]) for e in examples]
    g = torch.Generator().manual_seed(seed + 3)
    every = max(1, round(1 / fraction))
    picks = range(every - 1, len(batches), every)
    for i in picks:
        ids, labels = recall_task_batch(texts, g, batch_tokens, window=1024, span=24, spans=16, cue=3)
        batches[i] = [{"input_ids": a.tolist(), "labels": b.tolist()} for a, b in zip(ids, labels)]
    return len(picks)


class Batches:
    """A map-style dataset whose items are whole pre-grouped batches (the Trainer's batch size is 1)."""

    def __init__(self, batches: list[list[dict[str, Any]]]):
        self.batches = batches

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, i: int) -> list[dict[str, Any]]:
        return self.batches[i]


class BatchCollator:
    """Pads the examples of the pre-grouped batches into one tensor batch."""

    def __init__(self, pad_id: int):
        from wmgym.training.data import Collator

        self.inner = Collator(pad_id)

    def __call__(self, items: list[list[dict[str, Any]]]) -> dict[str, Any]:
        return self.inner([ex for batch in items for ex in batch])
