"""The small protocol every world-model backend follows.

A backend plays many episodes at once; each is a handle returned by
``start``. The twin env and the wrappers only talk to this protocol, so tests
can hand them a deterministic fake and real backends stay swappable.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Protocol, runtime_checkable


@dataclasses.dataclass
class WMStep:
    """One predicted step."""

    #: The raw assistant text (marker included), as it goes into the chat history.
    text: str
    #: The observation (marker removed, stripped).
    observation: str
    success: bool
    #: Mean token log-probability of the generated text (the twin's confidence).
    confidence: float
    parse_error: str | None = None
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)


@runtime_checkable
class WorldModel(Protocol):
    """Start episodes from an ``init_context`` and step them with actions."""

    def start(self, init_context: str) -> int:
        """Open an episode; returns its handle."""

    def step(self, handle: int, action: str) -> WMStep:
        """Predict the next observation of episode ``handle`` after ``action``."""

    def step_batch(self, handles: list[int], actions: list[str]) -> list[WMStep]:
        """Step several episodes at once (same results as one by one)."""

    def observe(self, handle: int, action: str, text: str) -> None:
        """Append a played turn without generating (teacher forcing, real history)."""

    def fork(self, handle: int) -> int:
        """Copy an episode (history and cache) into a new handle, for look-ahead."""

    def replace_last(self, handle: int, text: str) -> None:
        """Overwrite the last assistant turn (anchoring to a real observation)."""

    def end(self, handle: int) -> None:
        """Forget an episode and free its state (KV cache, ...)."""
