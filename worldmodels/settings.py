"""Generation settings shared by every world-model backend."""

from __future__ import annotations

import dataclasses
from typing import Any


@dataclasses.dataclass
class GenerationSettings:
    """How a backend generates one observation.

    The defaults are greedy decoding, as the released Word2World evaluation
    uses (``temperature=0``), with a token cap sized for CPU-run tiny models.
    """

    max_new_tokens: int = 256
    """Most tokens one observation may take; a longer one is cut and flagged in ``parse_error``."""
    stop_loops: bool = True
    """hf backend: end an observation whose text has begun to repeat itself (the same span three times, 24+
    tokens) instead of decoding on; it is cut and flagged as at the cap, its text the first part of what decoding on
    would give. A tiny twin given an action unlike its data can loop a line until the cap, and a batch waits for
    its slowest row. The default twins' held-out fidelity EM is the same with and without it."""
    prompt_lookup: int = 8
    """hf backend, greedy decoding, batches on the lean path: draft up to this many tokens by copying what followed
    the latest earlier occurrence of the last three tokens in the row's own context (prompt lookup decoding), and
    verify the draft in the same forward as the next token; 0 turns it off. Observations repeat the context (a
    room seen before, an object's description): one forward then writes several tokens, and the forward's cost is
    reading the row's keys, which a draft does not add to. Greedy text is what decoding token by token gives."""
    temperature: float = 0.0
    """0 decodes greedily; above 0 samples from the tempered distribution."""
    top_p: float = 1.0
    """Nucleus sampling mass (1 keeps every token); only when sampling."""
    top_k: int = 0
    """Keep only the k most likely tokens (0 keeps all); only when sampling."""
    seed: int | None = None
    """Seed of the sampling generator (per backend; the twin seeds each episode from its np_random)."""
    max_context_tokens: int | None = None
    """Longest prompt + generation (default: the model's ``max_position_embeddings``). Longer chats keep the
    system prompt and the latest turns (see the backend's overlong policy)."""

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0 (0 = greedy), got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.prompt_lookup < 0:
            raise ValueError(f"prompt_lookup must be >= 0 (0 = off), got {self.prompt_lookup}")
        if self.top_k < 0:
            raise ValueError(f"top_k must be >= 0 (0 = off), got {self.top_k}")
        if self.max_context_tokens is not None and self.max_context_tokens <= self.max_new_tokens:
            raise ValueError(f"max_context_tokens ({self.max_context_tokens}) must exceed max_new_tokens "
                             f"({self.max_new_tokens}) to leave room for a prompt")

    @classmethod
    def from_kwargs(cls, kwargs: dict[str, Any]) -> GenerationSettings:
        """Build from keyword arguments, rejecting unknown ones with the valid names."""
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(kwargs) - set(names))
        if unknown:
            raise TypeError(f"unknown generation setting(s) {unknown}; valid settings: {names}")
        return cls(**kwargs)

    def replace(self, **changes: Any) -> GenerationSettings:
        """A copy with some fields changed (``None`` values are ignored)."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})
