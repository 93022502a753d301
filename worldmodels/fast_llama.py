"""A lean one-token decode forward for Llama-architecture causal LMs (Llama, SmolLM2, Qwen2).

HF's forward spends most of a decode step on its module stack, not arithmetic: for the
embedded default twins (2 layers, d=128) a batched forward of one new token per row ran
about 60 small tensor ops and a few hundred Python calls (module hooks, mask building,
cache classes, output dataclasses). :class:`LeanDecoder` runs the same ops in plain torch
on the model's own parameters (read at each call, so in-place weight updates are seen;
nothing is copied), writing keys and values through the cache's layers as HF does.

Equality with HF comes first: every op mirrors HF's Llama/Qwen2 code in order and dtype
(RMSNorm in float32, RoPE from the model's own rotary module, SDPA with the same mask or
none where HF passes none, GQA packed as HF packs it), so logits are bit for bit HF's on
this CPU. :func:`lean_decoder` returns ``None`` for anything else (other architectures,
eager or flash attention, sliding windows, q/k norms, LoRA-wrapped layers); the caller
then uses HF's forward.
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
        cos, sin = inner.rotary_emb(h, positions)
        cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)
        batch = input_ids.shape[0]
        shape = (batch, 1, -1, self.head_dim)
        for layer, cache_layer in zip(inner.layers, cache.layers):
            attn, mlp = layer.self_attn, layer.mlp
            x = _rms_norm(layer.input_layernorm, h)
            q = F.linear(x, attn.q_proj.weight, attn.q_proj.bias).view(shape).transpose(1, 2)
            k = F.linear(x, attn.k_proj.weight, attn.k_proj.bias).view(shape).transpose(1, 2)
            v = F.linear(x, attn.v_proj.weight, attn.v_proj.bias).view(shape).transpose(1, 2)
            q = (q * cos) + (_rotate_half(q) * sin)
            k = (k * cos) + (_rotate_half(k) * sin)
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
