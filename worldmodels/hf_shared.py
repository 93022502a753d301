"""Batched decoding with a shared prompt prefix read once per token (hf backend, lean models only).

Rows of a ``make_vec`` batch that play the same game start with the same system prompt: on TextWorld that is
900-2,600 tokens of a 1,000-3,000-token context. Attention over a row's keys is bound by reading them from
memory (64 rows x 2,000 tokens of float32 keys and values are ~130 MB per layer and token), so the batch
paid the system prompt once per row per token. Here rows are grouped by a long common prompt prefix already in
their caches; each group's prefix is taken once (from one member's cache) and every row attends to it through
one matrix product per layer (:meth:`~wmgym.worldmodels.fast_llama.LeanDecoder.forward_split`), while its own
part (the rest of its history, the new user turn, the generated tokens) lives in per-row buffers laid out as
in :func:`~wmgym.worldmodels.hf_decode.decode_batch`::

    [ pad | own cached_i ]  [ new_i | pad ]  [ generated ... ]      own cached_i = cached_i[P_g:]

A row's episode cache keeps its own prefix; only the generated part is computed against the member's copy,
which holds the same tokens at the same positions (equal up to the last bits of how it was prefilled).

Greedy batches also decode with prompt lookup drafts (``GenerationSettings.prompt_lookup``): a row whose last
tokens occurred earlier in its context feeds, after its next token, the tokens that followed them there, and one
forward checks them all (query ``j`` of the block sees the block up to ``j``). The row keeps the draft up to the
first token the model would not have written, and the model's token there; the columns past it are marked
invalid in ``valid`` and skipped when its cache is copied out. A TextWorld twin writes ~70% of its tokens this
way (rooms and objects it has described before): a forward's cost is reading the row's keys, which a draft does
not add to. Every row's text is still the token-by-token greedy text (checked, as above, by tests and the
default twins' fidelity runs).
"""

from __future__ import annotations

from typing import Any

import torch

from wmgym.worldmodels import kvcache
from wmgym.worldmodels.settings import GenerationSettings

#: Shortest common prefix worth sharing (below it the per-group products cost more than the reads they save).
MIN_SHARED = 256


def prefix_groups(prompts: list[list[int]], keeps: list[int]) -> list[tuple[int, list[int], int]]:
    """Groups ``(member whose cache gives the prefix, rows, prefix length)`` of two or more rows whose prompts
    share at least :data:`MIN_SHARED` cached tokens. A row's prefix stops one short of its cache, so every row
    keeps an own cached key (a padding query must see some key)."""
    from wmgym.worldmodels.hf import _common_prefix

    groups: dict[tuple[int, ...], list[Any]] = {}  # rows share MIN_SHARED tokens iff their first ones are equal
    for i, ids in enumerate(prompts):
        if keeps[i] - 1 < MIN_SHARED:
            continue
        group = groups.setdefault(tuple(ids[:MIN_SHARED]), [i, [], keeps[i] - 1])
        group[1].append(i)
        group[2] = min(group[2], _common_prefix(prompts[group[0]], ids), keeps[i] - 1)
    return [(g[0], g[1], g[2]) for g in groups.values() if len(g[1]) > 1]


def spare_copy(x: torch.Tensor, size: int, need: int = 0) -> torch.Tensor:
    """The first ``size`` positions of the one-row keys or values ``x`` in a buffer of ``need`` positions (at
    least ``size``) and as many again for the turns to come: appending a turn then writes in place, where copying
    a TextWorld row into fresh memory cost 2 ms (its pages are faulted in on first write). Doubling, as
    :class:`~wmgym.worldmodels.kvcache.GrowableLayer` does, copies a row a logarithmic number of times."""
    need = max(need, size)
    buf = x.new_empty((*x.shape[:2], 2 * need + 64, x.shape[3]))
    buf[:, :, :size] = x[:, :, :size]
    return buf


def adopt_prefixes(episodes: list[Any], prompts: list[list[int]], keeps: list[int], rows: list[int]) -> set[int]:
    """Give each of ``rows`` a copy of the cached keys of a longer common prompt prefix held by another row
    (``keeps`` and the row's cache are updated); return the rows that got one. Only prefixes of more than
    :data:`MIN_SHARED` tokens count."""
    from wmgym.worldmodels.hf import _common_prefix

    donors: dict[tuple[int, ...], list[int]] = {}
    for j, ep in enumerate(episodes):
        if ep.cache is not None and keeps[j] > MIN_SHARED + 1:
            donors.setdefault(tuple(prompts[j][:MIN_SHARED]), []).append(j)
    adopted = set()
    for i in rows:
        ids = prompts[i]
        for j in donors.get(tuple(ids[:MIN_SHARED]), []):
            size = min(_common_prefix(prompts[j], ids), keeps[j], len(ids) - 1)
            if j != i and size > max(keeps[i], MIN_SHARED + 1):
                tensors = [(spare_copy(layer.keys, size), spare_copy(layer.values, size))
                           for layer in episodes[j].cache.layers]
                episodes[i].cache = kvcache.preallocated(tensors, size)
                episodes[i].cached_ids = list(ids[:size])
                keeps[i] = size
                adopted.add(i)
                break
    return adopted


def prefill_shared(wm: Any, episodes: list[Any], prompts: list[list[int]], keeps: list[int], rows: list[int]
                   ) -> dict[int, torch.Tensor]:
    """Bring fresh ``rows`` (long uncached prompts) up to a prefix held by another row: copied where a row of
    the batch holds it, else the first row of each game is prefilled alone (HF's forward, as a single step
    would) and the others copy from it. Returns the logits of the rows prefilled whole."""
    # Fresh rows only: a row that holds its system prompt already (say, with older turns cut off by the overlong
    # policy) has nothing to copy, and looking for it among every donor cost 100 ms a step at 64 TextWorld rows.
    candidates = [i for i in rows if keeps[i] <= MIN_SHARED < len(prompts[i]) - keeps[i]]
    adopted = adopt_prefixes(episodes, prompts, keeps, candidates)
    waiting = [i for i in candidates if i not in adopted]
    firsts: dict[tuple[int, ...], list[int]] = {}
    for i in waiting:
        firsts.setdefault(tuple(prompts[i][:MIN_SHARED]), []).append(i)
    solo = {}
    for members in firsts.values():
        if len(members) > 1:
            first = members[0]
            solo[first] = wm._prefill(episodes[first], prompts[first])
            keeps[first] = len(prompts[first])
            adopt_prefixes(episodes, prompts, keeps, members[1:])
    return solo


def decode_shared(wm: Any, episodes: list[Any], prompts: list[list[int]], keeps: list[int], news: list[list[int]],
                  solo: dict[int, torch.Tensor], settings: GenerationSettings,
                  groups: list[tuple[int, list[int], int]]) -> list[Any]:
    """Prefill the new parts and decode one turn for all rows, each group's prefix read once per token.

    ``keeps[i]`` tokens of row ``i``'s prompt are in its cache, ``news[i]`` follow (empty for rows prefilled
    alone, whose first logits are ``solo[i]``). On return each episode's cache holds its prompt and every
    generated token but the last, as with :func:`~wmgym.worldmodels.hf_decode.decode_batch`.
    """
    from wmgym.worldmodels.hf_decode import _TURN_ROOM, DecodeOutput, next_tokens

    lean, device = wm.lean, wm.device
    n = len(episodes)
    starts = [0] * n  # own part of row i starts at this position of its cache
    group_of = [-1] * n
    for g, (_, rows, size) in enumerate(groups):
        for i in rows:
            starts[i], group_of[i] = size, g
    owns = [k - s for k, s in zip(keeps, starts)]
    a, d = max(owns), max(len(x) for x in news)
    # Room for a typical turn; a block of drafts takes 1 + prompt_lookup columns for every row, kept or not.
    width = a + d + min(settings.max_new_tokens, _TURN_ROOM) * (1 + (settings.prompt_lookup > 0))
    heads, dim = lean.kv_heads, lean.head_dim
    dtype = wm.model.dtype
    buffers = [(torch.empty(n, heads, width, dim, dtype=dtype, device=device),
                torch.empty(n, heads, width, dim, dtype=dtype, device=device)) for _ in wm.model.model.layers]
    valid = torch.zeros(n, width, dtype=torch.bool, device=device)
    for kbuf, vbuf in buffers:  # left padding is read (times a zero weight): it must be finite
        kbuf[:, :, :a] = 0
        vbuf[:, :, :a] = 0
    # Batch rows in order of own length, so that rows with short own parts can skip the left padding together.
    order = sorted(range(n), key=lambda i: owns[i])
    for r, i in enumerate(order):
        if owns[i]:
            for (kbuf, vbuf), layer in zip(buffers, episodes[i].cache.layers):
                kbuf[r, :, a - owns[i]:a] = layer.keys[0, :, starts[i]:keeps[i]]
                vbuf[r, :, a - owns[i]:a] = layer.values[0, :, starts[i]:keeps[i]]
        valid[r, a - owns[i]:a + len(news[i])] = True
    prefixes = [[(layer.keys[0, :, :size].clone(), layer.values[0, :, :size].clone())
                 for layer in episodes[rep].cache.layers] for rep, _, size in groups]
    old_caches = [ep.cache for ep in episodes]  # each row's own prefix goes back into its cache at the end

    def shared_for(rows: list[int]) -> list[list[tuple[Any, torch.Tensor, torch.Tensor]]]:
        per_layer: list[list[Any]] = [[] for _ in buffers]
        for g in range(len(groups)):
            members = [r for r, i in enumerate(rows) if group_of[i] == g]
            if members:
                index = None if len(members) == len(rows) else torch.tensor(members, device=device)
                for layer, (pk, pv) in zip(per_layer, prefixes[g]):
                    layer.append((index, pk, pv))
        return per_layer

    def chunks_for(rows: list[int]) -> list[tuple[int, int, int]] | None:
        # Up to three bands of rows (in order of own length), each reading from its longest row's first column;
        # worth their extra products only when they skip a quarter of the keys or more.
        count = len(rows)
        if count < 6:
            return None
        bounds = [0, count // 3, 2 * count // 3, count]
        bands = [(r0, r1, a - owns[rows[r1 - 1]]) for r0, r1 in zip(bounds, bounds[1:])]
        skipped = sum((r1 - r0) * c0 for r0, r1, c0 in bands)
        return bands if skipped >= 0.25 * count * (a + d) else None

    pad = prompts[0][-1]
    input_ids = torch.tensor([news[i] + [pad] * (d - len(news[i])) for i in order], device=device)
    positions = torch.tensor([list(range(keeps[i], keeps[i] + d)) for i in order], device=device)
    causal = torch.ones(d, a + d, dtype=torch.bool, device=device).tril(a)
    mask = valid[:, None, None, :a + d] & causal
    last = torch.tensor([max(len(news[i]) - 1, 0) for i in order], device=device)
    rows = order  # batch row -> episode index (finished rows stay until compaction)
    shared, chunks = shared_for(rows), chunks_for(rows)
    logits = lean.forward_split(input_ids, positions, buffers, a, mask, shared, last, chunks)
    for r, i in enumerate(rows):
        if i in solo:
            logits[r] = solo[i]

    outputs = [DecodeOutput() for _ in episodes]
    alive = [True] * n
    lengths = [len(ids) for ids in prompts]
    frontier = a + d  # first column not yet written

    def end(r: int, i: int) -> None:  # a finished row's new valid columns are appended to its episode's cache
        columns = valid[r, a:frontier].nonzero().squeeze(1) + a
        episodes[i].cache = _row_cache(old_caches[i], keeps[i], buffers, r, columns)

    speculate = bool(settings.prompt_lookup) and settings.temperature == 0
    if speculate:
        contexts = [_Context(prompts[i], settings.max_new_tokens) for i in rows]
    feed = next_tokens(wm, settings, episodes, outputs, rows, alive, logits, end)
    fed = [0] * len(rows)  # tokens of each batch row written after its prompt
    while True:
        live = [r for r in range(len(rows)) if alive[r]]
        if not live:
            return outputs
        if len(live) <= 0.75 * len(rows):  # drop finished rows (see decode_batch)
            index = torch.tensor(live, device=device)
            buffers = [(k.index_select(0, index), v.index_select(0, index)) for k, v in buffers]
            valid, feed, fed = valid.index_select(0, index), [feed[r] for r in live], [fed[r] for r in live]
            if speculate:
                contexts = [contexts[r] for r in live]
            rows, alive = [rows[r] for r in live], [True] * len(live)
            shared, chunks = shared_for(rows), chunks_for(rows)
        if not speculate:
            drafts: list[list[int]] = [[] for _ in rows]
        else:
            drafts = [contexts[r].draft(feed[r], settings.prompt_lookup) if alive[r] else [] for r in range(len(rows))]
        t = 1 + max(len(x) for x in drafts)
        column = frontier
        if column + t > valid.shape[1]:  # a long turn: buffers and mask double
            grow = max(valid.shape[1], t)
            valid = torch.cat([valid, valid.new_zeros(valid.shape[0], grow)], dim=1)
            buffers = [(torch.cat([k, k.new_empty(*k.shape[:2], grow, k.shape[3])], dim=2),
                        torch.cat([v, v.new_empty(*v.shape[:2], grow, v.shape[3])], dim=2)) for k, v in buffers]
        frontier = column + t
        if t == 1:
            if speculate:
                for r in range(len(rows)):
                    if alive[r]:
                        contexts[r].extend([feed[r]])
            valid[:, column] = True
            positions = torch.tensor([[lengths[i] + f] for i, f in zip(rows, fed)], device=device)
            fed = [f + 1 for f in fed]
            tokens = torch.tensor(feed, device=device).unsqueeze(1)
            logits = lean.forward_split(tokens, positions, buffers, column, valid[:, None, None, :column + 1], shared,
                                        chunks=chunks)
            feed = next_tokens(wm, settings, episodes, outputs, rows, alive, logits, end)
            continue
        # A block: each row's next token, then its draft (padding after it); query j sees the block up to j.
        for r, x in enumerate(drafts):
            if alive[r]:
                valid[r, column:column + 1 + len(x)] = True
        tokens = torch.tensor([[feed[r], *x] + [0] * (t - 1 - len(x)) for r, x in enumerate(drafts)], device=device)
        positions = torch.tensor([[lengths[i] + f + j for j in range(t)] for i, f in zip(rows, fed)], device=device)
        causal = torch.ones(t, t, dtype=torch.bool, device=device).tril()
        mask = valid[:, None, None, :frontier].repeat(1, 1, t, 1)
        mask[:, :, :, column:] &= causal
        logits = lean.forward_split(tokens, positions, buffers, column, mask, shared, chunks=chunks, every=True)
        feed = _verify(wm, settings, episodes, outputs, rows, alive, logits, feed, drafts, fed, valid, column, end,
                       contexts)


def _verify(wm: Any, settings: GenerationSettings, episodes: list[Any], outputs: list[Any], rows: list[int],
            alive: list[bool], logits: torch.Tensor, firsts: list[int], drafts: list[list[int]], fed: list[int],
            valid: torch.Tensor,
            column: int, end: Any, contexts: list[_Context]) -> list[int]:
    """Greedy tokens of a block forward (``logits`` ``[B, T, vocab]``; the block fed each row's ``firsts`` token,
    then its draft): each live row takes the model's token at each column while it equals the row's draft token
    there, then one more; the columns past what it took are marked invalid. Updates ``fed`` and the contexts;
    returns the tokens to feed next (0 on rows that ended)."""
    from wmgym.worldmodels.hf_decode import finished

    logits = logits.float()
    picks = torch.argmax(logits, dim=-1)
    logps = (logits.gather(2, picks.unsqueeze(2)).squeeze(2) - torch.logsumexp(logits, dim=-1)).tolist()
    picks = picks.tolist()
    feed = [0] * len(rows)
    for r, draft in enumerate(drafts):
        if not alive[r]:
            continue
        i = rows[r]
        out = outputs[i]
        for j, token in enumerate(picks[r]):
            out.token_ids.append(token)
            out.logprobs.append(logps[r][j])
            out.drafted += j > 0
            done = finished(out, token, wm.stop_ids, settings)
            if done or j >= len(draft) or draft[j] != token:
                valid[r, column + j + 1:column + len(draft) + 1] = False
                fed[r] += j + 1
                contexts[r].extend([firsts[r], *picks[r][:j]])
                if done:
                    alive[r] = False
                    end(r, i)
                else:
                    feed[r] = token
                break
    return feed


class _Context:
    """A row's prompt and generated tokens, for prompt lookup drafts."""

    def __init__(self, prompt: list[int], room: int):
        import numpy as np

        self.ids = np.empty(len(prompt) + room + 1, dtype=np.int64)
        self.ids[:len(prompt)] = prompt
        self.size = len(prompt)

    def extend(self, tokens: list[int]) -> None:
        room = len(self.ids) - self.size
        tokens = tokens[:room]
        self.ids[self.size:self.size + len(tokens)] = tokens
        self.size += len(tokens)

    def draft(self, token: int, k: int, n: int = 3) -> list[int]:
        """Up to ``k`` tokens that followed the latest earlier occurrence of the context's last ``n`` tokens, the
        last of them ``token`` (picked, not yet in the context); none when they never occurred before."""
        import numpy as np

        ids, size = self.ids, self.size
        if size < n:
            return []
        tail = [*ids[size - n + 1:size].tolist(), token]
        # Starts s of earlier occurrences, s + n < size: the n-gram ends inside the context with a token after it.
        found = np.flatnonzero(ids[:size - n] == tail[0])
        for j in range(1, n):
            found = found[ids[found + j] == tail[j]]
        if not len(found):
            return []
        after = int(found[-1]) + n
        return ids[after:min(after + k, size)].tolist()


def _row_cache(old: Any, keep: int, buffers: list[tuple[torch.Tensor, torch.Tensor]], row: int,
               columns: torch.Tensor) -> Any:
    """A one-row cache: the first ``keep`` positions of the row's previous cache ``old`` (its cached prompt), then
    the ``columns`` (indices, in order) of batch ``row`` of the own-part ``buffers`` (the new prompt part and the
    generated tokens). Appended in ``old``'s own buffers where they have room (a row's cache is its alone: shared
    prefixes and adopted ones are copies), else copied into new ones of twice the size (see :func:`spare_copy`)."""
    length = keep + len(columns)
    out = []
    for index, (kbuf, vbuf) in enumerate(buffers):
        layer = old.layers[index] if keep else None
        pair = []
        for src, held, prev in ((kbuf, getattr(layer, "_kbuf", None), layer and layer.keys),
                                (vbuf, getattr(layer, "_vbuf", None), layer and layer.values)):
            if held is not None and held.shape[2] >= length and prev.data_ptr() == held.data_ptr():
                buf = held
            else:
                buf = spare_copy(prev if keep else src[row:row + 1], keep, length)
            buf[0, :, keep:length] = src[row].index_select(1, columns)
            pair.append(buf)
        out.append(tuple(pair))
    return kvcache.preallocated(out, length)
