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


@dataclasses.dataclass
class Chat:
    """One episode of a backend that keeps chats on the client (see :class:`ClientChats`)."""

    init_context: str
    history: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    #: Sampling seed of the episode; step ``k`` uses ``seed + k``.
    seed: int | None = None


class ClientChats:
    """The protocol's bookkeeping for backends that hold each chat as text and send it whole every step
    (``openai``, ``vllm``: the server's prefix cache finds what it has seen).

    A subclass sets ``self.settings`` (:class:`~wmgym.worldmodels.settings.GenerationSettings`), calls
    ``ClientChats.__init__`` and implements :meth:`_generate`.
    """

    def __init__(self) -> None:
        self._chats: dict[int, Chat] = {}
        self._next_handle = 0

    def __deepcopy__(self, memo: dict) -> ClientChats:
        # A loaded model is a shared resource (gym deep-copies env kwargs, e.g. in check_env): copies share it.
        return self

    def _generate(self, chats: list[Chat], actions: list[str]) -> list[WMStep]:
        """The next turn of each chat after its action (the chats are not changed)."""
        raise NotImplementedError

    def start(self, init_context: str) -> int:
        handle = self._next_handle
        self._next_handle += 1
        self._chats[handle] = Chat(init_context)
        if self.settings.seed is not None:
            self._chats[handle].seed = self.settings.seed + handle
        return handle

    def set_seed(self, handle: int, seed: int) -> None:
        """Seed an episode's sampling: step ``k`` uses ``seed + k`` (reproducible where the engine honours it)."""
        self._chat(handle).seed = int(seed)

    def _chat(self, handle: int) -> Chat:
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
        steps = self._generate(chats, actions)
        for chat, action, step in zip(chats, actions, steps):
            chat.history.append((action, step.text))
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
