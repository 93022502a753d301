"""The ``hf`` backend: a transformers causal LM that keeps each episode's KV cache.

Every episode (handle) owns its chat, the token ids its cache holds, and a
one-row ``DynamicCache``. A step renders the whole chat with the tokenizer's
chat template (so the prompt is token for token what ``apply_chat_template``
gives), keeps the cache up to the longest common prefix with what it already
holds, and feeds only the rest: the end-of-turn token sampled last step (never
fed while generating), the new user turn and the assistant header. A step thus
costs the new tokens, not the whole history. Editing the chat
(``replace_last``, ``observe``) needs no bookkeeping: the next step's common
prefix finds what is still valid.

``step_batch`` copies the episodes' caches once into buffers preallocated for
the turn, prefills all new user turns in one forward and decodes all rows
together, dropping finished ones (:func:`~wmgym.worldmodels.hf_decode.decode_batch`).
Greedy results equal one-by-one stepping.

Overlong chats: when prompt + ``max_new_tokens`` would pass
``max_context_tokens``, the oldest turns are dropped (the system prompt
stays) until the prompt fits in three quarters of the budget; the cut is
sticky, so the next steps share a prefix again instead of recomputing each
time. A system prompt too long on its own is cut at its end. Both set
``extra["context_truncated"]``.
"""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path
from typing import Any

from wmgym.worldmodels import kvcache
from wmgym.worldmodels.base import WMStep
from wmgym.worldmodels.fast_llama import lean_decoder
from wmgym.worldmodels.loading import resolve_model
from wmgym.worldmodels.protocol import Message, build_messages, parse_observation
from wmgym.worldmodels.settings import GenerationSettings

#: Share of the prompt budget the overlong policy cuts down to (hysteresis keeps the cache useful).
_REFILL = 0.75


@dataclasses.dataclass
class _Episode:
    init_context: str
    history: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    cache: Any = None
    #: Token ids the cache holds, position for position.
    cached_ids: list[int] = dataclasses.field(default_factory=list)
    #: Turns dropped from the front by the overlong policy (sticky).
    dropped: int = 0
    #: Tokens of the system prompt kept when it alone is too long (sticky; None = all).
    system_tokens: int | None = None
    generator: Any = None
    #: The last rendered chat up to its generation-prompt header, and its token ids (incremental tokenising).
    rendered: tuple[str, list[int]] = ("", [])


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i + 256 <= n and a[i:i + 256] == b[i:i + 256]:  # slices compare in C; the history matches in bulk
        i += 256
    while i < n and a[i] == b[i]:
        i += 1
    return i


class HFWorldModel:
    """World model over a transformers causal LM (see module docstring).

    Args:
        model: local model directory or hub id.
        device: ``"cpu"``, ``"cuda"``, ... (default: cuda when available).
        dtype: ``"auto"`` (bf16 on GPU where the checkpoint says so, float32 on CPU), ``"float32"``,
            ``"bfloat16"`` or ``"float16"``.
        reuse_cache: keep each episode's KV cache between steps (off: recompute the prompt each step).
        trust_remote_code: run the checkpoint's own Python code (off unless asked).
        **generation: :class:`GenerationSettings` fields.
    """

    def __init__(self, model: str | Path, *, device: str | None = None, dtype: str = "auto",
                 reuse_cache: bool = True, trust_remote_code: bool = False, **generation: Any):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        settings = GenerationSettings.from_kwargs(generation)
        name = resolve_model(model)
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        dtypes = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
        if dtype != "auto" and dtype not in dtypes:
            raise ValueError(f"dtype={dtype!r} is not supported; choose one of {['auto', *dtypes]}")
        torch_dtype = dtypes.get(dtype, "auto" if device != "cpu" else torch.float32)
        tokenizer = AutoTokenizer.from_pretrained(name, trust_remote_code=trust_remote_code)
        lm = AutoModelForCausalLM.from_pretrained(name, use_safetensors=True, trust_remote_code=trust_remote_code,
                                                  dtype=torch_dtype)
        self._setup(lm.to(device), tokenizer, settings, reuse_cache, name=name)

    @classmethod
    def from_pretrained_objects(cls, model: Any, tokenizer: Any, *, reuse_cache: bool = True,
                                name: str = "in-memory", **generation: Any) -> HFWorldModel:
        """Wrap an already-loaded model and tokenizer (training loops, tests, benchmarks)."""
        self = cls.__new__(cls)
        self._setup(model, tokenizer, GenerationSettings.from_kwargs(generation), reuse_cache, name=name)
        return self

    def _setup(self, model: Any, tokenizer: Any, settings: GenerationSettings, reuse_cache: bool, name: str) -> None:
        import torch

        if torch.device(model.device).type == "cpu":
            torch.set_num_threads(1)  # two threads are 5-35x slower on the shared CPUs this runs on
        if not getattr(tokenizer, "chat_template", None):
            raise ValueError(f"the tokenizer of {name!r} has no chat template; a world model needs one "
                             "(tokenizer_config.json 'chat_template' or chat_template.jinja)")
        self.model = model.eval()
        self.cache_kwarg = kvcache.cache_kwarg(model)
        # Token-by-token decoding without HF's module stack where the architecture allows (same logits); None: HF.
        self.lean = lean_decoder(model)
        self.tokenizer = tokenizer
        self.settings = settings
        self.reuse_cache = reuse_cache
        self.name = name
        self.device = model.device
        limit = settings.max_context_tokens or getattr(model.config, "max_position_embeddings", None) or 32768
        if limit <= settings.max_new_tokens:
            raise ValueError(f"the model's context ({limit} tokens) leaves no room for a prompt with "
                             f"max_new_tokens={settings.max_new_tokens}")
        self.max_context_tokens = int(limit)
        self.stop_ids = self._stop_ids()
        self._split_token = self._find_split_token()
        self._episodes: dict[int, _Episode] = {}
        self._next_handle = 0
        self.lock = threading.RLock()

    def _stop_ids(self) -> set[int]:
        ids: set[int] = set()
        for source in (getattr(self.model, "generation_config", None), self.tokenizer):
            eos = getattr(source, "eos_token_id", None)
            ids.update(eos if isinstance(eos, (list, tuple)) else [eos] if eos is not None else [])
        for token in ("<|im_end|>", "<|eot_id|>", "<|end|>"):
            tid = self.tokenizer.convert_tokens_to_ids(token)
            if isinstance(tid, int) and tid != self.tokenizer.unk_token_id and tid >= 0:
                ids.add(tid)
        if not ids:
            raise ValueError(f"cannot tell where a turn ends for {self.name!r}: no eos token in the tokenizer "
                             "or the generation config")
        return ids

    def _find_split_token(self) -> tuple[str, int] | None:
        """The special token the generation prompt starts with (``<|im_start|>``), if the history before it can
        be tokenised once and kept: checked here on a sample chat against tokenising the whole chat."""
        tok = self.tokenizer
        plain = [{"role": "system", "content": "Task: a."}, {"role": "user", "content": "look"}]
        try:
            head = tok.apply_chat_template(plain, add_generation_prompt=True, tokenize=False)
            gen = head[len(tok.apply_chat_template(plain, add_generation_prompt=False, tokenize=False)):]
        except Exception:  # noqa: BLE001 - a template that cannot render this chat: tokenise whole chats
            return None
        for tid, added in getattr(tok, "added_tokens_decoder", {}).items():
            if added.content and gen.startswith(added.content):
                self._split_token = (added.content, int(tid))
                longer = [*plain, {"role": "assistant", "content": "You see a cat. [SUCCESS]"},
                          {"role": "user", "content": "take cat"}]
                probe = _Episode(init_context="")
                self._render_ids(probe, plain)
                if self._render_ids(probe, longer) == self.chat_ids(longer) and probe.rendered[1]:
                    return self._split_token
                break
        return None

    def __deepcopy__(self, memo: dict) -> HFWorldModel:
        # A loaded model is a shared resource (gym deep-copies env kwargs, e.g. in check_env): copies share it.
        return self

    # ------------------------------------------------------------ protocol
    def start(self, init_context: str) -> int:
        with self.lock:
            handle = self._next_handle
            self._next_handle += 1
            self._episodes[handle] = _Episode(init_context=init_context)
            if self.settings.seed is not None:
                self.set_seed(handle, self.settings.seed + handle)
            return handle

    def set_seed(self, handle: int, seed: int) -> None:
        """Seed the sampling of one episode (the twin does this from its ``np_random``)."""
        import torch

        gen = torch.Generator(device=self.device)
        gen.manual_seed(int(seed))
        self._episode(handle).generator = gen

    def _episode(self, handle: int) -> _Episode:
        try:
            return self._episodes[handle]
        except KeyError:
            raise KeyError(f"unknown or ended world-model episode handle {handle!r}") from None

    def step(self, handle: int, action: str) -> WMStep:
        return self.step_batch([handle], [action])[0]

    def step_batch(self, handles: list[int], actions: list[str], settings: GenerationSettings | None = None
                   ) -> list[WMStep]:
        if len(handles) != len(actions):
            raise ValueError(f"step_batch got {len(handles)} handles but {len(actions)} actions")
        if len(set(handles)) != len(handles):
            raise ValueError(f"step_batch got a handle twice: {handles}")
        from wmgym.worldmodels.hf_decode import decode, decode_batch, drafts_apply

        import torch

        settings = settings or self.settings
        # inference_mode, not just no_grad: tensors skip autograd's version counting (cheaper per op).
        with self.lock, torch.inference_mode():
            episodes = [self._episode(h) for h in handles]
            prompts, truncated = zip(*(self._prompt_ids(ep, a, settings) for ep, a in zip(episodes, actions)))
            # A lone episode takes the batch path too where it decodes with drafts (the token-by-token path has none).
            batch = len(episodes) > 1 or drafts_apply(self, settings)
            if batch and all(ep.cache is None or kvcache.supports_surgery(ep.cache) for ep in episodes):
                outputs = decode_batch(self, episodes, list(prompts), settings)
            else:  # one episode decodes on its own cache; caches without surgery are recomputed one by one
                first_logits = [self._prefill(ep, ids) for ep, ids in zip(episodes, prompts)]
                outputs = decode(self, episodes, first_logits, settings)
            steps = []
            for ep, action, ids, cut, out in zip(episodes, actions, prompts, truncated, outputs):
                text = self.tokenizer.decode(out.content_ids, skip_special_tokens=True)
                parsed = parse_observation(text, truncated=not out.stopped)
                if out.looped:
                    parsed = dataclasses.replace(parsed, parse_error="generation repeated itself and was stopped "
                                                 "before the end of the turn (stop_loops)")
                ep.history.append((action, text))
                ep.cached_ids = list(ids) + out.token_ids[:-1]  # the last sampled token is fed next step
                if not self.reuse_cache:
                    ep.cache, ep.cached_ids = None, []
                confidence = sum(out.logprobs) / len(out.logprobs)
                extra = {"prompt_tokens": len(ids), "completion_tokens": len(out.token_ids),
                         "token_ids": out.token_ids, "token_logprobs": out.logprobs, "context_truncated": cut,
                         "looped": out.looped, "drafted_tokens": out.drafted}
                steps.append(WMStep(text=text, observation=parsed.observation, success=parsed.success,
                                    confidence=float(confidence), parse_error=parsed.parse_error, extra=extra))
            return steps

    def observe(self, handle: int, action: str, text: str) -> None:
        with self.lock:
            self._episode(handle).history.append((action, text))

    def fork(self, handle: int) -> int:
        with self.lock:
            ep = self._episode(handle)
            new = self.start(ep.init_context)
            copy = self._episodes[new]
            copy.history, copy.dropped, copy.system_tokens = list(ep.history), ep.dropped, ep.system_tokens
            copy.cached_ids, copy.rendered = list(ep.cached_ids), ep.rendered
            copy.cache = None if ep.cache is None else kvcache.clone(ep.cache)
            if ep.generator is not None:  # the copy continues the same random stream
                import torch

                copy.generator = torch.Generator(device=self.device)
                copy.generator.set_state(ep.generator.get_state())
            return new

    def replace_last(self, handle: int, text: str) -> None:
        with self.lock:
            ep = self._episode(handle)
            if not ep.history:
                raise ValueError(f"episode {handle} has no assistant turn to replace yet")
            ep.history[-1] = (ep.history[-1][0], text)

    def end(self, handle: int) -> None:
        with self.lock:
            self._episodes.pop(handle, None)

    def history(self, handle: int) -> list[tuple[str, str]]:
        """The ``(action, assistant text)`` turns of an episode (a copy)."""
        return list(self._episode(handle).history)

    def set_history(self, handle: int, history: list[tuple[str, str]]) -> None:
        """Replace an episode's turns (the server reuses a cached episode for a request's chat)."""
        with self.lock:
            ep = self._episode(handle)
            extends = history[:len(ep.history)] == ep.history
            ep.history = list(history)
            if not extends:  # the overlong policy's cut only carries over to a chat that extends this one
                ep.dropped, ep.system_tokens = 0, None

    # ------------------------------------------------------------ internals
    def chat_ids(self, messages: list[Message]) -> list[int]:
        """Token ids of a chat with the generation prompt, exactly as the chat template gives them."""
        ids = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True,
                                                 return_dict=False)
        return list(ids)

    def _render_ids(self, ep: _Episode, messages: list[Message]) -> list[int]:
        """:meth:`chat_ids` without tokenising the history again: the chat is rendered as text, and when it
        extends the text rendered last step up to its generation-prompt header, only the rest is tokenised
        (a special token splits the text, so the ids of what precedes it cannot change)."""
        if self._split_token is None:
            return self.chat_ids(messages)
        text = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        done_text, done_ids = ep.rendered
        if done_text and text.startswith(done_text):
            ids = done_ids + self.tokenizer(text[len(done_text):], add_special_tokens=False)["input_ids"]
        else:
            ids = list(self.tokenizer(text, add_special_tokens=False)["input_ids"])
        content, tid = self._split_token
        cut = text.rfind(content)
        ep.rendered = ("", [])
        if cut > 0 and tid in ids:
            ep.rendered = (text[:cut], ids[:len(ids) - 1 - ids[::-1].index(tid)])
        return ids

    def _messages(self, ep: _Episode, action: str) -> list[Message]:
        system = ep.init_context
        if ep.system_tokens is not None:
            ctx_ids = self.tokenizer(system, add_special_tokens=False)["input_ids"][: ep.system_tokens]
            system = self.tokenizer.decode(ctx_ids)
        return build_messages(system, ep.history[ep.dropped:], action)

    def _prompt_ids(self, ep: _Episode, action: str, settings: GenerationSettings) -> tuple[list[int], bool]:
        """The prompt for the next step under the overlong policy, and whether it cut anything."""
        budget = min(self.max_context_tokens, settings.max_context_tokens or self.max_context_tokens)
        budget -= settings.max_new_tokens
        ids = self._render_ids(ep, self._messages(ep, action))
        if len(ids) <= budget:
            return ids, bool(ep.dropped or ep.system_tokens is not None)
        target = int(budget * _REFILL)
        while len(ids) > target and ep.dropped < len(ep.history):
            ep.dropped += 1
            ids = self._render_ids(ep, self._messages(ep, action))
        if len(ids) > budget:  # the system prompt and the action alone do not fit: cut the system prompt's end
            full = len(self.tokenizer(ep.init_context, add_special_tokens=False)["input_ids"])
            ep.system_tokens = max(0, min(ep.system_tokens or full, full) - (len(ids) - target))
            ids = self._render_ids(ep, self._messages(ep, action))
            if len(ids) > budget:
                raise ValueError(f"the action alone ({len(ids)} prompt tokens) does not fit the context budget "
                                 f"of {budget} tokens; raise max_context_tokens or lower max_new_tokens")
        return ids, True

    def _prefill(self, ep: _Episode, ids: list[int]) -> Any:
        """Bring the episode's cache up to ``ids``; return the logits after the last prompt token."""
        import torch

        keep = _common_prefix(ep.cached_ids, ids) if ep.cache is not None else 0
        keep = min(keep, len(ids) - 1)  # at least one token must be fed to get logits
        if ep.cache is not None and keep < kvcache.seq_length(ep.cache):
            if kvcache.supports_surgery(ep.cache):
                kvcache.crop(ep.cache, keep)
            else:
                ep.cache, keep = None, 0
        if ep.cache is None:
            ep.cache, keep = kvcache.new_cache(self.model.config), 0
        new = torch.tensor([ids[keep:]], device=self.device)
        positions = torch.arange(keep, len(ids), device=self.device).unsqueeze(0)
        with torch.no_grad():
            out = self.model(input_ids=new, position_ids=positions, use_cache=True, logits_to_keep=1,
                             **{self.cache_kwarg: ep.cache})
        ep.cached_ids = list(ids)
        return out.logits[0, -1]
