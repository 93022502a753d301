"""A deterministic fake world model (unique module name: ``tests/`` is on the path of every test).

Used for exact edge cases of the wrappers and for the twin contract of every
``WM-*`` id. End-to-end wrapper tests use a real trained model; the fake pins
down cases a trained model cannot be made to hit on purpose (confidence exactly
under a threshold, a divergence at a chosen step), and lets the twin contract
run for every env without training a model for each.
"""

from __future__ import annotations

from collections.abc import Callable

from wmgym.worldmodels.base import WMStep
from wmgym.worldmodels.protocol import parse_observation

#: rule(init_context, history, action) -> (assistant text, confidence)
Rule = Callable[[str, list[tuple[str, str]], str], tuple[str, float]]


class FakeWorldModel:
    """Answers each action with ``rule``; keeps chats exactly as the protocol says."""

    def __init__(self, rule: Rule):
        self.rule = rule
        self.chats: dict[int, tuple[str, list[tuple[str, str]]]] = {}
        self.steps: list[tuple[int, str, list[tuple[str, str]]]] = []  # (handle, action, history before)
        self._next = 0

    def start(self, init_context: str) -> int:
        self._next += 1
        self.chats[self._next] = (init_context, [])
        return self._next

    def step(self, handle: int, action: str) -> WMStep:
        context, history = self.chats[handle]
        self.steps.append((handle, action, list(history)))
        text, confidence = self.rule(context, list(history), action)
        history.append((action, text))
        parsed = parse_observation(text)
        return WMStep(text=text, observation=parsed.observation, success=parsed.success, confidence=confidence,
                      parse_error=parsed.parse_error)

    def step_batch(self, handles: list[int], actions: list[str]) -> list[WMStep]:
        return [self.step(h, a) for h, a in zip(handles, actions)]

    def observe(self, handle: int, action: str, text: str) -> None:
        self.chats[handle][1].append((action, text))

    def fork(self, handle: int) -> int:
        context, history = self.chats[handle]
        self._next += 1
        self.chats[self._next] = (context, list(history))
        return self._next

    def replace_last(self, handle: int, text: str) -> None:
        history = self.chats[handle][1]
        history[-1] = (history[-1][0], text)

    def end(self, handle: int) -> None:
        del self.chats[handle]


class EchoRule:
    """A rule that answers every action with "You <action>." (a class, not a closure, so twins pickle)."""

    def __call__(self, context: str, history: list[tuple[str, str]], action: str) -> tuple[str, float]:
        return f"You {action}.", -0.1


#: Train game 4 of TextWorld-v0: a one-room cooking game (the recipe is a diced parsley).
COOKING_GAME = {"game": 4, "split": "train"}
#: The expert's winning path in that game.
COOKING_WIN = ["take parsley from fridge", "take knife from counter", "dice parsley with knife", "prepare meal",
               "eat meal"]


def replay_rule(transcript, diverge_at: int | None = None, confidence: float = -0.1) -> Rule:
    """A rule that answers with the real transcript, except from step ``diverge_at`` on."""
    from wmgym.worldmodels.protocol import target_text

    def rule(context, history, action):
        i = len(history)
        if diverge_at is not None and i >= diverge_at or i >= len(transcript) or transcript[i][0] != action:
            return f"Twin says: you {action}.", confidence
        return target_text(transcript[i][1], transcript[i][2]), confidence

    return rule
