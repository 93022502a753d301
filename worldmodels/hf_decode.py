"""Token-by-token decoding for the hf backend, one episode or a batch.

One episode decodes on its own cache. Several decode together over a
left-padded stack of their caches (padding masked out, each row at its own
positions); a row that ends is sliced out of the stack into its episode's
cache and dropped from the batch, so the batch shrinks as turns end.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

from wmgym.worldmodels import kvcache
from wmgym.worldmodels.settings import GenerationSettings


@dataclasses.dataclass
class DecodeOutput:
    """What one episode generated."""

    #: Every sampled token, the end-of-turn token included when the turn ended.
    token_ids: list[int] = dataclasses.field(default_factory=list)
    #: Model log-probability (temperature 1) of each sampled token.
    logprobs: list[float] = dataclasses.field(default_factory=list)
    #: Ended by an end-of-turn token (else it hit ``max_new_tokens``).
    stopped: bool = False

    @property
    def content_ids(self) -> list[int]:
        return self.token_ids[:-1] if self.stopped else self.token_ids


def choose(logits: torch.Tensor, settings: GenerationSettings, generator: Any) -> tuple[int, float]:
    """Pick the next token (greedy, or sampled with temperature / top-k / top-p); return it and its log-prob."""
    logits = logits.float()
    logp = torch.log_softmax(logits, dim=-1)
    if settings.temperature == 0:
        token = int(torch.argmax(logits))
    else:
        scores = logits / settings.temperature
        if settings.top_k:
            kth = torch.topk(scores, min(settings.top_k, scores.numel())).values[-1]
            scores = scores.masked_fill(scores < kth, float("-inf"))
        if settings.top_p < 1.0:
            sorted_scores, order = torch.sort(scores, descending=True)
            probs = torch.softmax(sorted_scores, dim=-1)
            drop = (torch.cumsum(probs, dim=-1) - probs) > settings.top_p
            scores = scores.index_fill(0, order[drop], float("-inf"))
        probs = torch.softmax(scores, dim=-1)
        token = int(torch.multinomial(probs, 1, generator=generator))
    return token, float(logp[token])


def decode(wm: Any, episodes: list[Any], first_logits: list[torch.Tensor], settings: GenerationSettings
           ) -> list[DecodeOutput]:
    """Decode one turn for each episode, starting from the logits after its prompt.

    Each episode's cache must hold exactly its ``cached_ids`` (the prompt);
    on return it holds the prompt and every generated token but the last.
    """
    outputs = [DecodeOutput() for _ in episodes]
    batched = len(episodes) > 1
    lengths = [len(ep.cached_ids) for ep in episodes]
    if batched:
        cache, pads = kvcache.stack_left_padded([ep.cache for ep in episodes])
        width = kvcache.seq_length(cache)
        mask = torch.ones(len(episodes), width, dtype=torch.long, device=wm.device)
        for row, pad in enumerate(pads):
            mask[row, :pad] = 0
    else:
        cache, pads, width, mask = episodes[0].cache, [0], lengths[0], None
    active = list(range(len(episodes)))  # batch row -> episode index
    logits = list(first_logits)
    fed = 0  # tokens fed per active row since the prompt
    while True:
        keep, feed = [], []
        for row, i in enumerate(active):
            token, logprob = choose(logits[row], settings, episodes[i].generator)
            out = outputs[i]
            out.token_ids.append(token)
            out.logprobs.append(logprob)
            out.stopped = token in wm.stop_ids
            if out.stopped or len(out.token_ids) >= settings.max_new_tokens:
                if batched:
                    episodes[i].cache = kvcache.slice_row(cache, row, pads[i], width + fed)
            else:
                keep.append(row)
                feed.append(token)
        if not keep:
            return outputs
        if batched and len(keep) < len(active):
            kvcache.select_rows(cache, keep)
            mask = mask[keep]
        active = [active[row] for row in keep]
        input_ids = torch.tensor(feed, device=wm.device).unsqueeze(1)
        positions = torch.tensor([lengths[i] + fed for i in active], device=wm.device).unsqueeze(1)
        if batched:
            mask = torch.cat([mask, mask.new_ones(len(active), 1)], dim=1)
        fed += 1
        with torch.no_grad():
            result = wm.model(input_ids=input_ids, attention_mask=mask, position_ids=positions, use_cache=True,
                              logits_to_keep=1, **{wm.cache_kwarg: cache})
        logits = list(result.logits[:, -1])
