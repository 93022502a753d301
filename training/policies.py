"""Scripted policies for collection and benchmarks.

A policy is a callable ``policy(env, observation, info) -> action`` with a
``name``. It may read the unwrapped env (the expert asks the engine for its next
command), so collection covers golden paths, noisy detours and random play.

``make_policy("expert" | "random" | "noisy-expert:EPS" | "explore", seed)`` builds one; a ``+score:P``
suffix (``"expert+score:0.3"``) also types the env's score command before an action with probability ``P``.
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


class ScoreQueries:
    """``policy``, with the env's score command typed before an action with probability ``p`` (never twice in a
    row).

    The score command is out of the story: Inform answers "You have so far scored 2 out of a possible 5, in 7
    turns." and neither the state nor the turn count changes, so the episode is the same game with true extra
    transitions. They are the only steps that show the turn count before the game ends, which the winning banner
    prints ("in 8 turns"): data from the real engine that makes counting the turns pay.
    """

    def __init__(self, policy: Policy, p: float, seed: int | None = None):
        if not 0.0 < p < 1.0:
            raise ValueError(f"score query probability must be in (0, 1), got {p}")
        self.policy, self.p = policy, p
        self.name = f"{policy.name}+score:{p:g}"
        self.rng = np.random.default_rng(None if seed is None else seed + 7)
        self._last = None

    def __call__(self, env: gym.Env, observation: str, info: dict[str, Any]) -> str:
        command = getattr(env.unwrapped, "score_command", None)
        if command is None:
            raise ValueError(f"{env.unwrapped.__class__.__name__} has no score command; drop the +score suffix")
        if "action_valid" not in info:  # reset info: a new episode
            self._last = None
        if self._last != command and self.rng.random() < self.p:
            self._last = command
        else:
            self._last = self.policy(env, observation, info)
        return self._last


POLICY_NAMES = ("expert", "random", "noisy-expert:EPS", "explore", "POLICY+score:P")


def make_policy(spec: str, seed: int | None = None) -> Policy:
    """Build a policy from its name: ``expert``, ``random``, ``noisy-expert:EPS`` or ``explore``, each optionally
    with a ``+score:P`` suffix (:class:`ScoreQueries`)."""
    base, plus, suffix = spec.partition("+")
    if plus:
        kind, _, p = suffix.partition(":")
        if kind != "score":
            raise ValueError(f"unknown policy suffix {'+' + suffix!r} in {spec!r}; valid: '+score:P'")
        try:
            return ScoreQueries(make_policy(base, seed), float(p or 0.3), seed)
        except ValueError as e:
            raise ValueError(f"bad policy {spec!r}: {e}") from None
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
