"""KV-cache surgery for the hf backend: crop, copy, preallocated batch buffers, rows in and out.

Each episode owns a one-row ``DynamicCache``. Batched decoding copies the
rows once into preallocated buffers sized for the whole turn (:func:`preallocated`),
grows them in place token by token, drops finished rows by compaction
(:func:`compact`, capacity kept) and copies each row's valid columns back out
(:func:`row_cache`). Only plain full-attention layers (``DynamicLayer``) can be cropped
and padded; for other layouts (sliding windows, linear attention)
:func:`supports_surgery` says no and the backend recomputes instead.
"""

from __future__ import annotations

import torch
from transformers.cache_utils import DynamicCache, DynamicLayer


class GrowableLayer(DynamicLayer):
    """A full-attention layer that appends into a buffer with spare room.

    ``DynamicLayer`` concatenates on every update, copying the whole cache for
    each generated token (O(length) per token; it dominated decoding time at a
    few thousand tokens). This layer doubles its buffer when full and writes in
    place, so an append costs the new tokens. ``keys``/``values`` stay views of
    the filled part; code that replaces them (crop, row selection) simply makes
    the next update start a fresh buffer when the view no longer is one.
    """

    _kbuf: torch.Tensor | None = None
    _vbuf: torch.Tensor | None = None

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs):
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        n = self.keys.shape[-2] if self.keys.numel() else 0
        new = key_states.shape[-2]
        buf = self._kbuf
        reusable = (buf is not None and self.keys.data_ptr() == buf.data_ptr()
                    and self.values.data_ptr() == self._vbuf.data_ptr()
                    and buf.shape[:-2] == key_states.shape[:-2] and n + new <= buf.shape[-2])
        if not reusable:
            capacity = max(64, 2 * (n + new))
            shape = (*key_states.shape[:-2], capacity, key_states.shape[-1])
            kbuf, vbuf = key_states.new_empty(shape), value_states.new_empty(shape)
            if n:
                kbuf[..., :n, :] = self.keys
                vbuf[..., :n, :] = self.values
            self._kbuf, self._vbuf = kbuf, vbuf
        self._kbuf[..., n:n + new, :] = key_states
        self._vbuf[..., n:n + new, :] = value_states
        self.keys = self._kbuf[..., :n + new, :]
        self.values = self._vbuf[..., :n + new, :]
        return self.keys, self.values


def new_cache(config=None) -> DynamicCache:
    """An empty one-row cache: growable full-attention layers, or the model's own layout if it has others."""
    if config is not None:
        text = config.get_text_config(decoder=True)
        types = getattr(text, "layer_types", None)
        if types and any(t != "full_attention" for t in types):
            return DynamicCache(config=config)
    cache = DynamicCache()
    cache.layer_class_to_replicate = GrowableLayer
    return cache


def cache_kwarg(model) -> str:
    """The keyword the model's ``forward`` takes its KV cache by: ``cache`` in transformers 5.2x (where
    ``past_key_values`` still works but raises a FutureWarning on every call), ``past_key_values`` before."""
    import inspect

    try:
        params = inspect.signature(model.forward).parameters
    except (TypeError, ValueError):  # a forward without an inspectable signature
        return "past_key_values"
    return "cache" if "cache" in params else "past_key_values"


def supports_surgery(cache: DynamicCache) -> bool:
    """Whether every layer is a plain, croppable full-attention layer."""
    return all(type(layer) in (DynamicLayer, GrowableLayer) for layer in cache.layers)


def seq_length(cache: DynamicCache | None) -> int:
    return 0 if cache is None else cache.get_seq_length()


def _tensors(cache: DynamicCache) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [(layer.keys, layer.values) for layer in cache.layers]


def from_tensors(tensors: list[tuple[torch.Tensor, torch.Tensor]]) -> DynamicCache:
    """A ``DynamicCache`` holding the given per-layer (keys, values)."""
    cache = new_cache()
    for i, (k, v) in enumerate(tensors):
        cache.update(k, v, i)
    return cache


def crop(cache: DynamicCache, length: int) -> None:
    """Keep the first ``length`` positions (in place)."""
    for layer in cache.layers:
        if layer.is_initialized and layer.keys.numel():
            layer.keys = layer.keys[..., :length, :]
            layer.values = layer.values[..., :length, :]


def clone(cache: DynamicCache) -> DynamicCache:
    """An independent copy (for forking an episode)."""
    return from_tensors([(k.clone(), v.clone()) for k, v in _tensors(cache)])


def stack_left_padded(caches: list[DynamicCache]) -> tuple[DynamicCache, list[int]]:
    """Stack one-row caches into one batch, padding shorter rows on the left.

    Returns the batch cache and each row's number of padding positions (the
    attention mask must zero them).
    """
    lengths = [seq_length(c) for c in caches]
    total = max(lengths)
    pads = [total - n for n in lengths]
    per_layer = zip(*(_tensors(c) for c in caches))
    stacked = []
    for layer in per_layer:
        keys, values = [], []
        for (k, v), pad in zip(layer, pads):
            if pad:
                shape = (*k.shape[:-2], pad, k.shape[-1])
                k = torch.cat([k.new_zeros(shape), k], dim=-2)
                v = torch.cat([v.new_zeros(shape), v], dim=-2)
            keys.append(k)
            values.append(v)
        stacked.append((torch.cat(keys, dim=0), torch.cat(values, dim=0)))
    return from_tensors(stacked), pads


def slice_row(cache: DynamicCache, row: int, start: int, stop: int) -> DynamicCache:
    """Copy positions ``[start, stop)`` of batch row ``row`` into a one-row cache."""
    return from_tensors([(k[row:row + 1, :, start:stop].clone(), v[row:row + 1, :, start:stop].clone())
                         for k, v in _tensors(cache)])


def select_rows(cache: DynamicCache, rows: list[int]) -> None:
    """Keep only the given batch rows (in place)."""
    index = torch.tensor(rows, device=cache.layers[0].keys.device)
    for layer in cache.layers:
        layer.keys = layer.keys.index_select(0, index)
        layer.values = layer.values.index_select(0, index)


def preallocated(buffers: list[tuple[torch.Tensor, torch.Tensor]], length: int) -> DynamicCache:
    """A cache over given per-layer (keys, values) buffers whose first ``length`` positions are filled; the
    model's updates write into the rest in place (no reallocation while the buffers have room)."""
    cache = new_cache()
    for kbuf, vbuf in buffers:
        layer = GrowableLayer()
        # What DynamicLayer.lazy_initialization sets, but its two empty tensors (0.4 ms a row of a batch's end).
        layer.device, layer.is_initialized = kbuf.device, True
        layer._kbuf, layer._vbuf = kbuf, vbuf
        layer.keys, layer.values = kbuf[..., :length, :], vbuf[..., :length, :]
        cache.layers.append(layer)
    return cache


def compact(cache: DynamicCache, rows: torch.Tensor) -> None:
    """Keep only batch ``rows`` (in place), keeping each buffer's spare room for the next tokens."""
    for layer in cache.layers:
        n = layer.keys.shape[-2]
        layer._kbuf, layer._vbuf = layer._kbuf.index_select(0, rows), layer._vbuf.index_select(0, rows)
        layer.keys, layer.values = layer._kbuf[..., :n, :], layer._vbuf[..., :n, :]


def row_cache(cache: DynamicCache, row: int, spans: list[tuple[int, int]], spare: int = 64) -> DynamicCache:
    """A one-row cache of the columns ``spans`` (``[start, stop)`` pairs, in order) of batch row ``row``, in a
    buffer with ``spare`` free positions (the next turn's prompt and generation append without reallocating)."""
    length = sum(b - a for a, b in spans)
    buffers = []
    for layer in cache.layers:
        pair = []
        for src in (layer._kbuf, layer._vbuf):
            buf = src.new_empty((1, src.shape[1], length + spare, src.shape[3]))
            at = 0
            for a, b in spans:
                buf[0, :, at:at + b - a] = src[row, :, a:b]
                at += b - a
            pair.append(buf)
        buffers.append(tuple(pair))
    return preallocated(buffers, length)
