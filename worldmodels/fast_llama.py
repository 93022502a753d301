"""A lean decode forward for Llama-architecture causal LMs (Llama, SmolLM2, Qwen2).

HF's forward spends most of a decode step on its module stack, not arithmetic: profiling a
``make_vec`` x8 step of the embedded ALFWorld twin (2 layers, d=128), the linear and
attention kernels took 0.10 s of the 0.35 s its forwards ran; the rest was module calls,
mask building, cache classes and output objects. :class:`LeanDecoder` runs the same ops in
plain torch on the model's own parameters (read at each call, so in-place weight updates are
seen; nothing is copied).

:meth:`LeanDecoder.forward` mirrors HF's Llama/Qwen2 code op for op in order and dtype
(RMSNorm in float32, RoPE values from the model's own rotary module, SDPA with the same mask
or none where HF passes none, GQA packed as HF packs it), so its logits are bit for bit HF's
on this CPU. :meth:`LeanDecoder.forward_split` serves batches whose rows share a long prompt
prefix (see :mod:`~wmgym.worldmodels.hf_shared`); its attention is exact softmax attention
summed in another order than SDPA's kernel (last-bit differences; the tests and the make_vec
comparisons give the same greedy tokens as HF). :func:`lean_decoder` returns ``None`` for
anything else (other architectures, eager or flash attention, sliding windows, q/k norms,
layers wrapped by LoRA before the backend was built); the caller then uses HF's forward.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

#: Architectures whose decoder layer is exactly: RMSNorm, attention (RoPE, optional q/k/v bias), residual,
#: RMSNorm, SiLU-gated MLP, residual; and whose model is embed -> layers -> RMSNorm -> lm_head.
_ARCHITECTURES = {"LlamaForCausalLM": "llama", "Qwen2ForCausalLM": "qwen2"}


def lean_decoder(model: Any) -> LeanDecoder | None:
    """A :class:`LeanDecoder` for ``model``, or ``None`` when its decode forward is not the one mirrored here."""
    kind = _ARCHITECTURES.get(type(model).__name__)
    if kind is None or model.config.model_type != kind:
        return None
    cfg = model.config
    if getattr(cfg, "_attn_implementation", None) != "sdpa" or cfg.hidden_act != "silu":
        return None
    if getattr(cfg, "pretraining_tp", 1) != 1:
        return None
    if any(t != "full_attention" for t in (getattr(cfg, "layer_types", None) or [])):
        return None
    inner = model.model
    linear, norm = torch.nn.Linear, type(inner.norm)
    if type(model.lm_head) is not linear or not norm.__name__.endswith("RMSNorm"):
        return None
    for layer in inner.layers:
        attn, mlp = layer.self_attn, layer.mlp
        parts = (attn.q_proj, attn.k_proj, attn.v_proj, attn.o_proj, mlp.gate_proj, mlp.up_proj, mlp.down_proj)
        if any(type(p) is not linear for p in parts) or any(hasattr(attn, x) for x in ("q_norm", "k_norm")):
            return None
        if type(layer.input_layernorm) is not norm or type(layer.post_attention_layernorm) is not norm:
            return None
        if getattr(attn, "sliding_window", None) or getattr(mlp, "act_fn", None).__class__.__name__ != "SiLUActivation":
            return None
    return LeanDecoder(model)


def _rms_norm(module: Any, x: torch.Tensor) -> torch.Tensor:
    # HF's LlamaRMSNorm / Qwen2RMSNorm, op for op.
    dtype = x.dtype
    h = x.to(torch.float32)
    variance = h.pow(2).mean(-1, keepdim=True)
    h = h * torch.rsqrt(variance + module.variance_epsilon)
    return module.weight * h.to(dtype)


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def _qkv(attn: Any, x: torch.Tensor, shape: tuple[int, ...], cos: torch.Tensor, sin: torch.Tensor
         ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """HF's query, key and value projections of ``x`` as ``[B, heads, T, head dim]``, RoPE applied to q and k."""
    q = F.linear(x, attn.q_proj.weight, attn.q_proj.bias).view(shape).transpose(1, 2)
    k = F.linear(x, attn.k_proj.weight, attn.k_proj.bias).view(shape).transpose(1, 2)
    v = F.linear(x, attn.v_proj.weight, attn.v_proj.bias).view(shape).transpose(1, 2)
    return (q * cos) + (_rotate_half(q) * sin), (k * cos) + (_rotate_half(k) * sin), v


class LeanDecoder:
    """One new token per row through a Llama-architecture model, HF's arithmetic without HF's module stack.

    Args:
        model: a model :func:`lean_decoder` accepted (its modules are read at each call).
    """

    def __init__(self, model: Any):
        self.model = model
        cfg = model.config
        self.heads = cfg.num_attention_heads
        self.kv_heads = getattr(cfg, "num_key_value_heads", None) or self.heads
        self.head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // self.heads
        self.groups = self.heads // self.kv_heads
        self._rope_table: tuple[torch.Tensor, torch.Tensor] | None = None

    def _rope(self, h: torch.Tensor, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The model's rotary cos and sin at ``positions`` ``[B, T]``, each ``[B, 1, T, head dim]``.

        For the default RoPE they are looked up in a table the model's own rotary module computed once for every
        position (elementwise, so the same values as computing them per call, which took a module call and
        eight ops per forward); other RoPE types (scaled, dynamic) call the module.
        """
        rope = self.model.model.rotary_emb
        table = self._rope_table
        if getattr(rope, "rope_type", None) == "default":
            if table is None or table[0].dtype != h.dtype or table[0].device != h.device:
                every = torch.arange(self.model.config.max_position_embeddings, device=h.device).unsqueeze(0)
                table = self._rope_table = tuple(x[0] for x in rope(h, every))
            try:
                flat, shape = positions.reshape(-1), (*positions.shape, -1)
                return tuple(x.index_select(0, flat).view(shape).unsqueeze(1) for x in table)
            except (IndexError, RuntimeError):  # a position past the table: the module computes it
                pass
        cos, sin = rope(h, positions)
        return cos.unsqueeze(1), sin.unsqueeze(1)

    def forward(self, input_ids: torch.Tensor, positions: torch.Tensor, cache: Any,
                mask: torch.Tensor | None) -> torch.Tensor:
        """Logits ``[B, vocab]`` after feeding ``input_ids`` ``[B, 1]`` at ``positions`` ``[B, 1]``.

        ``cache`` is a ``DynamicCache`` whose layers take the new keys and values (``layer.update``) and return
        all of them; ``mask`` is the boolean ``[B, 1, 1, length]`` key mask (True: attend) or ``None`` when no key
        is masked (HF then passes none either, and SDPA takes the unmasked kernel).
        """
        model = self.model
        inner = model.model
        h = F.embedding(input_ids, inner.embed_tokens.weight)
        cos, sin = self._rope(h, positions)
        batch = input_ids.shape[0]
        shape = (batch, 1, -1, self.head_dim)
        for layer, cache_layer in zip(inner.layers, cache.layers):
            attn, mlp = layer.self_attn, layer.mlp
            q, k, v = _qkv(attn, _rms_norm(layer.input_layernorm, h), shape, cos, sin)
            keys, values = cache_layer.update(k, v)
            if self.groups > 1:  # HF's decode-time GQA: the group's queries become a query axis of each kv head
                if mask is None:
                    out = F.scaled_dot_product_attention(q, keys, values, scale=attn.scaling, enable_gqa=True)
                else:
                    q = q.reshape(batch, self.kv_heads, self.groups, self.head_dim)
                    out = F.scaled_dot_product_attention(q, keys, values, attn_mask=mask, scale=attn.scaling)
                out = out.reshape(batch, -1, 1, self.head_dim)
            else:
                out = F.scaled_dot_product_attention(q, keys, values, attn_mask=mask, scale=attn.scaling)
            out = out.transpose(1, 2).contiguous().reshape(batch, 1, -1).contiguous()
            h = h + F.linear(out, attn.o_proj.weight, attn.o_proj.bias)
            x = _rms_norm(layer.post_attention_layernorm, h)
            x = F.silu(F.linear(x, mlp.gate_proj.weight, mlp.gate_proj.bias)) * F.linear(x, mlp.up_proj.weight,
                                                                                        mlp.up_proj.bias)
            h = h + F.linear(x, mlp.down_proj.weight, mlp.down_proj.bias)
        h = _rms_norm(inner.norm, h)
        return F.linear(h, model.lm_head.weight, model.lm_head.bias)[:, -1]

    def forward_split(self, input_ids: torch.Tensor, positions: torch.Tensor, buffers: list[tuple[torch.Tensor, ...]],
                      at: int, mask: torch.Tensor, shared: list[list[tuple[Any, torch.Tensor, torch.Tensor]]],
                      last: torch.Tensor | None = None, chunks: list[tuple[int, int, int]] | None = None,
                      every: bool = False) -> torch.Tensor:
        """Logits ``[B, vocab]`` after ``input_ids`` ``[B, T]`` (at ``last`` ``[B]``, else the last column) for rows
        whose keys are a prefix shared by a group of rows followed by their own part.

        ``buffers`` holds each layer's own-part (keys, values) ``[B, kv heads, room, head dim]``; the new keys and
        values are written at columns ``[at, at + T)``, and attention reads columns ``[0, at + T)`` under ``mask``
        ``[B, 1, T, at + T]`` (True: attend; causality included). ``shared[layer]`` lists ``(rows, keys, values)``:
        the rows (a LongTensor, or ``None`` for all) that also attend to that prefix ``[kv heads, P, head dim]``,
        which precedes their own part. The prefix is read once for all its rows (a matrix product instead of one
        pass per row), which is what makes long shared system prompts cheap; the softmax over prefix and own part
        is merged exactly, but in a different order of summation than SDPA's kernel (last-bit differences).
        ``chunks`` (``(first row, end row, first column)``, rows in order) skip left padding: rows whose own
        parts are short read only their columns from ``first column`` on. ``every``: the logits of every column,
        ``[B, T, vocab]`` (a block of draft tokens verified in one forward).
        """
        model = self.model
        inner = model.model
        h = F.embedding(input_ids, inner.embed_tokens.weight)
        cos, sin = self._rope(h, positions)
        batch, t = input_ids.shape
        shape = (batch, t, -1, self.head_dim)
        stop = at + t
        for layer, (kbuf, vbuf), prefixes in zip(inner.layers, buffers, shared):
            attn, mlp = layer.self_attn, layer.mlp
            q, kbuf[:, :, at:stop], vbuf[:, :, at:stop] = _qkv(attn, _rms_norm(layer.input_layernorm, h), shape,
                                                                cos, sin)
            out = _split_attention(q, kbuf[:, :, :stop], vbuf[:, :, :stop], mask, prefixes, attn.scaling,
                                   self.kv_heads, chunks)
            out = out.transpose(1, 2).reshape(batch, t, -1)
            h = h + F.linear(out, attn.o_proj.weight, attn.o_proj.bias)
            x = _rms_norm(layer.post_attention_layernorm, h)
            x = F.silu(F.linear(x, mlp.gate_proj.weight, mlp.gate_proj.bias)) * F.linear(x, mlp.up_proj.weight,
                                                                                        mlp.up_proj.bias)
            h = h + F.linear(x, mlp.down_proj.weight, mlp.down_proj.bias)
        if not every:
            h = h[:, -1] if last is None else h[torch.arange(batch, device=h.device), last]
        h = _rms_norm(inner.norm, h)
        return F.linear(h, model.lm_head.weight, model.lm_head.bias)


def _flash(q: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, mask: torch.Tensor | None, scale: float
           ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Softmax attention as ``(max score, exp-sum, weighted values)`` parts (see :func:`_split_attention`) from
    torch's fused CPU kernel, which also returns the log-sum-exp: the values come normalised, so the parts are
    ``(lse, 1, output)``. Fused, it skips the score matrix a plain matmul/exp/matmul writes and reads back: 3-4x
    faster than that on a block of draft queries or on many rows' queries against one shared prefix."""
    bias = None
    if mask is not None:
        bias = torch.zeros(mask.shape, dtype=q.dtype, device=q.device).masked_fill_(~mask, float("-inf"))
    out, lse = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(q, keys, values, attn_mask=bias,
                                                                          scale=scale)
    lse = lse.unsqueeze(-1)
    return lse, torch.ones_like(lse), out


def _split_attention(q: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, mask: torch.Tensor,
                     prefixes: list[tuple[Any, torch.Tensor, torch.Tensor]], scale: float,
                     kv_heads: int, chunks: list[tuple[int, int, int]] | None = None) -> torch.Tensor:
    """Softmax attention of ``q`` ``[B, H, T, D]`` over (a group's shared prefix, then the row's own keys).

    Each part gives its maximum score, exp-sum and weighted values; the two are merged with the usual
    log-sum-exp rescaling, which is the softmax over their concatenation.
    """
    batch, heads, t, dim = q.shape
    groups = heads // kv_heads
    if not prefixes:  # nothing to merge: SDPA's kernel (a block prefill of 2,000 queries would not fit scores in cache)
        return F.scaled_dot_product_attention(q, keys, values, attn_mask=mask, scale=scale, enable_gqa=groups > 1)
    qg = q.reshape(batch, kv_heads, groups * t, dim)  # head kvh * groups + j, query i -> row j * t + i
    if groups > 1:
        mask = mask.unsqueeze(2).expand(batch, 1, groups, t, mask.shape[-1]).reshape(batch, 1, groups * t, -1)
    own = []
    fused = q.device.type == "cpu" and groups * t > 1  # one query a row: the plain ops are as fast
    for r0, r1, c0 in chunks or [(0, batch, 0)]:
        if fused:
            own.append(_flash(qg[r0:r1], keys[r0:r1, :, c0:], values[r0:r1, :, c0:], mask[r0:r1, :, :, c0:], scale))
            continue
        scores = torch.matmul(qg[r0:r1], keys[r0:r1, :, c0:].transpose(-1, -2)) * scale
        scores = scores.masked_fill(~mask[r0:r1, :, :, c0:], float("-inf"))
        m = scores.amax(-1, keepdim=True)
        weights = torch.exp(scores - m)
        own.append((m, weights.sum(-1, keepdim=True), torch.matmul(weights, values[r0:r1, :, c0:])))
    m_own, l_own, o_own = own[0] if len(own) == 1 else (torch.cat(x) for x in zip(*own))
    if not prefixes:
        return (o_own / l_own).reshape(batch, heads, t, dim)
    m_pre = torch.full_like(m_own, float("-inf"))
    l_pre = torch.zeros_like(l_own)
    o_pre = torch.zeros_like(o_own)
    for rows, pkeys, pvalues in prefixes:
        qs = qg if rows is None else qg.index_select(0, rows)
        n = qs.shape[0]
        flat = qs.transpose(0, 1).reshape(kv_heads, n * groups * t, dim)  # every row's queries against the prefix
        if q.device.type == "cpu":
            parts = [x[0] for x in _flash(flat[None], pkeys[None], pvalues[None], None, scale)]
        else:
            s = torch.matmul(flat, pkeys.transpose(-1, -2)) * scale
            m = s.amax(-1, keepdim=True)
            w = torch.exp(s - m)
            parts = (m, w.sum(-1, keepdim=True), torch.matmul(w, pvalues))
        parts = [p.view(kv_heads, n, groups * t, -1).transpose(0, 1) for p in parts]
        if rows is None:
            m_pre, l_pre, o_pre = parts
        else:
            for into, part in zip((m_pre, l_pre, o_pre), parts):
                into.index_copy_(0, rows, part)
    m = torch.maximum(m_own, m_pre)
    a_own, a_pre = torch.exp(m_own - m), torch.exp(m_pre - m)
    out = (o_own * a_own + o_pre * a_pre) / (l_own * a_own + l_pre * a_pre)
    return out.reshape(batch, heads, t, dim)
