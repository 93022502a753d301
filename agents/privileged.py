"""Privileged collection agents: they read the engine, so they roll real envs into training data.

- ``expert``: the engine's expert (walkthrough / planner) from the current state;
- ``noisy-expert:EPS``: the expert, a random admissible command instead with probability ``EPS``
  (:class:`~wmgym.agents.base.Noisy`, the same wrapper as ``scripted:EPS``);
- ``explore``: untried ``open ...`` commands, then untried moves, then random play;
- ``random`` (privileged): :class:`~wmgym.agents.base.RandomAgent` over the live admissible commands;
- ``SPEC+score:P``: ``SPEC`` with the env's score command typed before an action with probability ``P``.

Each is seeded at reset with the episode seed and draws exactly what the collection policies always drew.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from wmgym.agents.base import BaseAgent


class ExpertAgent(BaseAgent):
    """The engine's expert from the current state; a random admissible command where it has nothing to say."""

    name = "expert"
    privileged = True

    def act(self, observation: str, info: dict[str, Any]) -> str:
        action = self.engine.expert_action()
        if action is None:  # the expert has nothing to say (e.g. game already lost)
            return self.random_action(observation, info)
        return action


class ExploreAgent(BaseAgent):
    """A searcher: an untried admissible ``open ...`` (look inside what is here first), else an untried move
    (``go ...``), else a random admissible command.

    It sees every place and container of a game, which the expert visits only where its plan leads: data on
    what each first visit shows (the lookup of the initial state), from the real engine.
    """

    name = "explore"
    privileged = True

    def reset(self, observation: str, info: dict[str, Any], seed: int | None, env: Any = None) -> None:
        super().reset(observation, info, seed, env)
        # Fresh picks on the episode seed, the fallback on seed + 1: the streams collection always used.
        self.fallback_rng = np.random.default_rng(None if seed is None else seed + 1)
        self.tried: set[str] = set()

    def act(self, observation: str, info: dict[str, Any]) -> str:
        commands = [c for c in info.get("admissible_commands") or [] if c not in self.tried]
        fresh = [c for c in commands if c.startswith("open ")] or [c for c in commands if c.startswith("go ")]
        if fresh:
            action = str(fresh[int(self.rng.integers(len(fresh)))])
        else:
            action = self.random_action(observation, info, self.fallback_rng)
        self.tried.add(action)
        return action


class ScoreQueries:
    """``base``, with the env's score command typed before an action with probability ``p`` (never twice in a
    row).

    The score command is out of the story: Inform answers "You have so far scored 2 out of a possible 5, in 7
    turns." and neither the state nor the turn count changes, so the episode is the same game with true extra
    transitions. They are the only steps that show the turn count before the game ends, which the winning
    banner prints ("in 8 turns"): data from the real engine that makes counting the turns pay.
    """

    privileged = True

    def __init__(self, base: Any, p: float):
        if not 0.0 < p < 1.0:
            raise ValueError(f"score query probability must be in (0, 1), got {p}")
        self.base, self.p = base, p
        self.name = f"{base.name}+score:{p:g}"
        self.rng = np.random.default_rng(0)
        self.command: str | None = None
        self._last: str | None = None

    def reset(self, observation: str, info: dict[str, Any], seed: int | None, env: Any = None) -> None:
        engine = None if env is None else env.unwrapped
        self.command = getattr(engine, "score_command", None)
        if self.command is None:
            raise ValueError(f"{engine.__class__.__name__} has no score command; drop the +score suffix")
        self.rng = np.random.default_rng(None if seed is None else seed + 7)
        self._last = None
        self.base.reset(observation, info, seed, env)

    def act(self, observation: str, info: dict[str, Any]) -> str:
        # The coin is not drawn right after a query (short-circuit): the draws collection always made.
        if self._last != self.command and self.rng.random() < self.p:
            self._last = self.command
            self.base.observe(observation, info)
            self.base.played(self.command)
        else:
            self._last = self.base.act(observation, info)
        return self._last
