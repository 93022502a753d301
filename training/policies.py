"""Scripted policies for collection and benchmarks.

A policy is a callable ``policy(env, observation, info) -> action`` with a
``name``. It may read the unwrapped env (the expert asks the engine for its next
command), so collection covers golden paths, noisy detours and random play.

``make_policy("expert" | "random" | "noisy-expert:EPS" | "explore", seed)`` builds one.
"""

from __future__ import annotations

from typing import Any, Protocol

import gymnasium as gym
import numpy as np

#: What a random policy says where an env offers no admissible commands.
FALLBACK_ACTIONS = ("look", "inventory", "wait")


class Policy(Protocol):
    name: str

    def __call__(self, env: gym.Env, observation: str, info: dict[str, Any]) -> str: ...


class RandomPolicy:
    """Uniform over the admissible commands (or a few generic verbs)."""

    name = "random"

    def __init__(self, seed: int | None = None):
        self.rng = np.random.default_rng(seed)

    def __call__(self, env: gym.Env, observation: str, info: dict[str, Any]) -> str:
        choices = info.get("admissible_commands") or list(FALLBACK_ACTIONS)
        return str(choices[int(self.rng.integers(len(choices)))])


class ExpertPolicy:
    """The engine's expert (walkthrough / planner) from the current state."""

    name = "expert"

    def __init__(self, seed: int | None = None):
        self._random = RandomPolicy(seed)

    def __call__(self, env: gym.Env, observation: str, info: dict[str, Any]) -> str:
        action = env.unwrapped.expert_action()
        if action is None:  # the expert has nothing to say (e.g. game already lost)
            return self._random(env, observation, info)
        return action


class NoisyExpertPolicy:
    """The expert, replaced by a random admissible command with probability ``eps``."""

    def __init__(self, eps: float, seed: int | None = None):
        if not 0.0 <= eps <= 1.0:
            raise ValueError(f"noisy-expert eps must be in [0, 1], got {eps}")
        self.eps = eps
        self.name = f"noisy-expert:{eps:g}"
        self.rng = np.random.default_rng(seed)
        self._expert = ExpertPolicy(seed)
        self._random = RandomPolicy(None if seed is None else seed + 1)

    def __call__(self, env: gym.Env, observation: str, info: dict[str, Any]) -> str:
        if self.rng.random() < self.eps:
            return self._random(env, observation, info)
        return self._expert(env, observation, info)


class ExplorePolicy:
    """A searcher: an untried admissible ``open ...`` (look inside what is here first), else an untried
    move (``go ...``), else a random admissible command.

    It sees every place and container of a game, which the expert visits only where its plan leads: data
    on what each first visit shows (the lookup of the initial state), from the real engine.
    """

    name = "explore"

    def __init__(self, seed: int | None = None):
        self.rng = np.random.default_rng(seed)
        self._random = RandomPolicy(None if seed is None else seed + 1)
        self._tried: set[str] = set()

    def __call__(self, env: gym.Env, observation: str, info: dict[str, Any]) -> str:
        if "action_valid" not in info:  # reset info: a new episode
            self._tried = set()
        commands = [c for c in info.get("admissible_commands") or [] if c not in self._tried]
        fresh = [c for c in commands if c.startswith("open ")] or [c for c in commands if c.startswith("go ")]
        action = str(fresh[int(self.rng.integers(len(fresh)))]) if fresh else self._random(env, observation, info)
        self._tried.add(action)
        return action


POLICY_NAMES = ("expert", "random", "noisy-expert:EPS", "explore")


def make_policy(spec: str, seed: int | None = None) -> Policy:
    """Build a policy from its name: ``expert``, ``random``, ``noisy-expert:EPS`` or ``explore``."""
    if spec == "expert":
        return ExpertPolicy(seed)
    if spec == "explore":
        return ExplorePolicy(seed)
    if spec == "random":
        return RandomPolicy(seed)
    if spec.startswith("noisy-expert"):
        _, _, eps = spec.partition(":")
        try:
            return NoisyExpertPolicy(float(eps or 0.2), seed)
        except ValueError as e:
            raise ValueError(f"bad policy {spec!r}: {e}") from None
    raise ValueError(f"unknown policy {spec!r}; valid policies: {list(POLICY_NAMES)}")
