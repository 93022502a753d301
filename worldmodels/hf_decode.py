"""Token-by-token decoding for the hf backend, one episode or a batch.

One episode decodes on its own cache. Several go through :func:`decode_batch`:
their caches are copied once into buffers preallocated for the whole turn,
the new user turns of all of them are prefilled in ONE forward, and every
generated token is written in place (no per-token concatenation). Layout of
batch row ``i`` (``A`` = longest kept cache, ``D`` = longest new prompt part)::

    [ pad | cached_i ]  [ new_i | pad ]  [ generated ... ]
    0         A - 0      A       A + D    A + D + t

Padding is masked out and every token carries its own position, so each row
computes what it would alone. A row that ends is copied out into its
episode's cache; finished rows are dropped from the batch by compaction once
they are a quarter of it (each compaction copies the batch, so doing it at
every finish would cost more than the few wasted rows).
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

    #: Stopped early because the text had begun to repeat itself (see :func:`finished`); cut, as at the cap.
    looped: bool = False

    #: Tokens that came from a forward's draft columns (``GenerationSettings.prompt_lookup``): generated tokens
    #: beyond one per forward.
    drafted: int = 0

    @property
    def content_ids(self) -> list[int]:
        return self.token_ids[:-1] if self.stopped else self.token_ids


#: Loop check: the shortest generation it looks at, and how often (in tokens) it looks.
_LOOP_MIN, _LOOP_EVERY = 48, 8


def looping(ids: list[int], copies: int = 3, min_span: int = 24) -> bool:
    """Whether ``ids`` ends with at least ``copies`` identical copies of one span of 4 tokens or more, the copies
    ``min_span`` tokens or more in all: greedy decoding that has written the same lines three times over writes them
    again until the token cap (a tiny twin's "- The sandwich is edible." x 30 after a random ``look``)."""
    n = len(ids)
    for period in range(4, n // copies + 1):
        tail = ids[n - period:]
        k = 1
        while (k + 1) * period <= n and ids[n - (k + 1) * period:n - k * period] == tail:
            k += 1
        if k >= copies and k * period >= min_span:
            return True
    return False


def finished(out: DecodeOutput, token: int, stop_ids: set[int], settings: GenerationSettings) -> bool:
    """Record whether ``out`` (``token`` just appended) ended its turn: an end-of-turn token, the token cap, or,
    with ``settings.stop_loops``, text that repeats itself (then cut as at the cap, ``looped`` set)."""
    out.stopped = token in stop_ids
    if out.stopped or len(out.token_ids) >= settings.max_new_tokens:
        return True
    n = len(out.token_ids)
    if settings.stop_loops and n >= _LOOP_MIN and n % _LOOP_EVERY == 0 and looping(out.token_ids):
        out.looped = True
        return True
    return False


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
            if finished(out, token, wm.stop_ids, settings):
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
        lean = getattr(wm, "lean", None)
        if lean is not None and not batched:  # one row, no padding: HF passes no mask either
            logits = list(lean.forward(input_ids, positions, cache, None))
            continue
        with torch.no_grad():
            result = wm.model(input_ids=input_ids, attention_mask=mask, position_ids=positions, use_cache=True,
                              logits_to_keep=1, **{wm.cache_kwarg: cache})
        logits = list(result.logits[:, -1])


def choose_rows(logits: torch.Tensor, settings: GenerationSettings, generators: list[Any]) -> list[tuple[int, float]]:
    """:func:`choose` for each row of ``logits`` (one vectorised argmax when greedy)."""
    if settings.temperature != 0:
        return [choose(row, settings, gen) for row, gen in zip(logits, generators)]
    logits = logits.float()
    tokens = torch.argmax(logits, dim=-1)
    logps = torch.log_softmax(logits, dim=-1).gather(1, tokens.unsqueeze(1)).squeeze(1)
    return list(zip(tokens.tolist(), logps.tolist()))


def next_tokens(wm: Any, settings: GenerationSettings, episodes: list[Any], outputs: list[DecodeOutput],
                rows: list[int], alive: list[bool], logits: torch.Tensor, end: Any) -> list[int]:
    """One decode step of a batch: the next token of every live row (``rows``: batch row -> episode index) is
    picked from ``logits`` and recorded in its episode's output; a row whose turn ended is marked dead in
    ``alive`` and handed to ``end(row, episode)``. Returns the tokens to feed, 0 on dead rows (a list, made a tensor
    once by the caller: a tensor element write costs microseconds, 64 rows x every token)."""
    live = [r for r in range(len(rows)) if alive[r]]
    picks = choose_rows(logits if len(live) == len(rows) else logits[live], settings,
                        [episodes[rows[r]].generator for r in live])
    feed = [0] * len(rows)
    for r, (token, logprob) in zip(live, picks):
        i = rows[r]
        out = outputs[i]
        out.token_ids.append(token)
        out.logprobs.append(logprob)
        if finished(out, token, wm.stop_ids, settings):
            alive[r] = False
            end(r, i)
        else:
            feed[r] = token
    return feed


def _cache_shape(model: Any) -> tuple[int, int, int]:
    """(layers, key-value heads, head dim) of the model's KV cache."""
    cfg = model.config.get_text_config(decoder=True)
    heads = getattr(cfg, "num_key_value_heads", None) or cfg.num_attention_heads
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
    return cfg.num_hidden_layers, heads, head_dim


#: Generated tokens the batch buffers have room for before they grow.
_TURN_ROOM = 64

#: New prompt tokens above which a row is prefilled on its own (if also 4x the batch's median).
_SOLO_PREFILL = 64


def split_path(wm: Any) -> bool:
    """Whether ``wm``'s batches may decode on :mod:`~wmgym.worldmodels.hf_shared`'s path (shared prompt prefixes,
    prompt lookup drafts): a lean decoder and float32 weights. Only float32: that path's attention sums in its own
    order, which in half precision would drift from SDPA's (float32-accumulating) kernel by more than the last
    bits checked here."""
    return (getattr(wm, "lean", None) is not None and getattr(wm, "share_prefix", True)
            and wm.model.dtype == torch.float32)


def drafts_apply(wm: Any, settings: GenerationSettings) -> bool:
    """Whether a step of ``wm`` under ``settings`` decodes with prompt lookup drafts (greedy, on the split path)."""
    return bool(settings.prompt_lookup) and settings.temperature == 0 and split_path(wm)


def decode_batch(wm: Any, episodes: list[Any], prompts: list[list[int]], settings: GenerationSettings
                 ) -> list[DecodeOutput]:
    """Prefill and decode one turn for several episodes in one batch (see module docstring).

    Each episode's cache (``None`` or a one-row full-attention cache) holds its ``cached_ids``; on return it
    holds its prompt and every generated token but the last.
    """
    from wmgym.worldmodels.hf import _common_prefix

    n = len(episodes)
    keeps = [min(_common_prefix(ep.cached_ids, ids) if ep.cache is not None else 0, len(ids) - 1)
             for ep, ids in zip(episodes, prompts)]
    # A row with a long new part (a fresh episode's system prompt) is prefilled alone first: in the batch its
    # length would pad every row's prefill to it.
    sizes = [len(ids) - k for ids, k in zip(prompts, keeps)]
    limit = max(_SOLO_PREFILL, 4 * sorted(sizes)[n // 2])
    share = split_path(wm)
    solo = {}
    if share:  # fresh rows of one game (a reset onto it) copy its system prompt's keys from one row that holds them
        from wmgym.worldmodels import hf_shared

        solo = hf_shared.prefill_shared(wm, episodes, prompts, keeps, list(range(n)))
    for i, (ep, ids) in enumerate(zip(episodes, prompts)):
        if len(ids) - keeps[i] > limit:
            solo[i] = wm._prefill(ep, ids)
    for i in solo:
        keeps[i] = len(prompts[i])
    news = [ids[k:] for ids, k in zip(prompts, keeps)]
    if share:
        groups = hf_shared.prefix_groups(prompts, keeps)
        # Rows with a long common prompt prefix (the same game's system prompt) read it once per token; greedy
        # batches take that path also without one, for its drafts (settings.prompt_lookup).
        if groups or drafts_apply(wm, settings):
            return hf_shared.decode_shared(wm, episodes, prompts, keeps, news, solo, settings, groups)
    a, d = max(keeps), max(len(x) for x in news)
    # Room for a typical turn; a longer one grows the buffers (doubling) and the mask.
    width = a + d + min(settings.max_new_tokens, _TURN_ROOM)
    layers, heads, head_dim = _cache_shape(wm.model)
    dtype, device = wm.model.dtype, wm.device
    # Uninitialised memory, but never read unwritten: left padding is zeroed below (a masked key or value must
    # still be finite, or 0 * NaN poisons the row), every other column is written before attention reads it.
    buffers = [(torch.empty(n, heads, width, head_dim, dtype=dtype, device=device),
                torch.empty(n, heads, width, head_dim, dtype=dtype, device=device)) for _ in range(layers)]
    # Boolean, as HF turns any 2-D mask into; the lean path slices it as the [B, 1, 1, keys] mask SDPA takes.
    mask = torch.zeros(n, width, dtype=torch.bool, device=device)
    for kbuf, vbuf in buffers:
        kbuf[:, :, :a] = 0
        vbuf[:, :, :a] = 0
    for i, (ep, keep) in enumerate(zip(episodes, keeps)):
        if keep:
            for (kbuf, vbuf), layer in zip(buffers, ep.cache.layers):
                kbuf[i, :, a - keep:a] = layer.keys[0, :, :keep]
                vbuf[i, :, a - keep:a] = layer.values[0, :, :keep]
        mask[i, a - keep:a + len(news[i])] = True
    cache = kvcache.preallocated(buffers, a)
    pad = prompts[0][-1]
    input_ids = torch.tensor([x + [pad] * (d - len(x)) for x in news], device=device)
    positions = torch.tensor([list(range(k, k + d)) for k in keeps], device=device)
    with torch.no_grad():
        result = wm.model(input_ids=input_ids, attention_mask=mask[:, :a + d], position_ids=positions,
                          use_cache=True, **{wm.cache_kwarg: cache})
    last = torch.tensor([max(len(x) - 1, 0) for x in news], device=device)
    logits = result.logits[torch.arange(n, device=device), last]
    for i, first in solo.items():
        logits[i] = first

    lean = getattr(wm, "lean", None)
    # Rows with masked keys (left padding, a short new part); while none is in the batch, no mask is passed.
    padded = [keeps[i] < a or len(news[i]) < d for i in range(n)]
    outputs = [DecodeOutput() for _ in episodes]
    rows = list(range(n))  # batch row -> episode index (finished rows stay until compaction)
    alive = [True] * n
    lengths = [len(ids) for ids in prompts]
    fed = 0
    def end(r: int, i: int) -> None:  # a finished row's cache is copied out into its episode
        episodes[i].cache = kvcache.row_cache(cache, r, [(a - keeps[i], a + len(news[i])), (a + d, a + d + fed)])

    while True:
        feed = next_tokens(wm, settings, episodes, outputs, rows, alive, logits, end)
        live = [r for r in range(len(rows)) if alive[r]]
        if not live:
            return outputs
        if len(live) <= 0.75 * len(rows):  # drop finished rows: one copy of the batch buys fewer rows per token
            index = torch.tensor(live, device=device)
            kvcache.compact(cache, index)
            mask, feed = mask.index_select(0, index), [feed[r] for r in live]
            rows, alive = [rows[r] for r in live], [True] * len(live)
        if a + d + fed >= mask.shape[1]:  # a long turn: the mask grows with the cache
            mask = torch.cat([mask, mask.new_zeros(mask.shape[0], mask.shape[1])], dim=1)
        mask[:, a + d + fed] = True
        positions = torch.tensor([[lengths[i] + fed] for i in rows], device=device)
        feed = torch.tensor(feed, device=device).unsqueeze(1)
        fed += 1
        if lean is not None:
            keys = mask[:, None, None, :a + d + fed] if any(padded[i] for i in rows) else None
            logits = lean.forward(feed, positions, cache, keys)
            continue
        with torch.no_grad():
            result = wm.model(input_ids=feed, attention_mask=mask[:, :a + d + fed], position_ids=positions,
                              use_cache=True, logits_to_keep=1, **{wm.cache_kwarg: cache})
        logits = result.logits[:, -1]
