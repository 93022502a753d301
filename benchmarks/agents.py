"""Agents for the consistency benchmark, all runnable offline.

An agent reads only what the env returns (the observation text, the task,
and the admissible commands *at reset*, which real env and twin report alike),
never engine internals, so it behaves identically in a real env and in its
twin: the same observations produce the same actions. That is what makes
WM and W2R comparable with Real.

- ``random``: a uniformly random command among those admissible at reset and
  those the observation suggests (see :func:`candidate_commands`);
- ``scripted``: an env-specific observation-only agent (see
  ``agents_textworld``, ``agents_alfworld``, ``agents_sciworld``);
- ``scripted:EPS``: the scripted agent, replaced by a random action with
  probability ``EPS`` at each step (a spread of skill from one agent);
- ``react``: an LLM agent over an OpenAI-compatible endpoint or a local HF
  model (see :mod:`wmgym.benchmarks.react`).

Agents are reset with a seed per episode, so the same (game, seed) gives the
same random choices in the real env and in the twin.
"""

from __future__ import annotations

import re
from typing import Any, Protocol

import numpy as np

#: Agent specs accepted by :func:`make_agent`.
AGENT_SPECS = ("random", "scripted", "scripted:EPS", "react")


class Agent(Protocol):
    """An agent plays one episode at a time from observations only."""

    name: str

    def reset(self, observation: str, info: dict[str, Any], seed: int) -> None:
        """Start an episode (``observation``/``info`` from ``env.reset``)."""

    def act(self, observation: str, info: dict[str, Any]) -> str:
        """The next action given the latest observation and info."""


def candidate_commands(observation: str, reset_commands: list[str]) -> list[str]:
    """What a random choice draws from: the admissible commands *at reset*, the
    directions the observation mentions, ``look`` and ``inventory``.

    Not the current ``info["admissible_commands"]``: a twin cannot know which
    commands later states admit (it reports its reset list for the whole
    episode), so an agent that read the live list would act differently in the
    twin than in the real env for reasons that have nothing to do with the
    twin's dynamics.
    """
    low = observation.lower()
    dirs = {f"go {d}" for d in ("north", "south", "east", "west") if re.search(rf"\b{d}\b", low)}
    return sorted(set(reset_commands) | dirs | {"look", "inventory"})


def random_choice(rng: np.random.Generator, observation: str, reset_commands: list[str]) -> str:
    """A uniformly random command among :func:`candidate_commands`."""
    choices = candidate_commands(observation, reset_commands)
    return str(choices[int(rng.integers(len(choices)))])


class RandomAgent:
    """Uniform over :func:`candidate_commands` at every step."""

    name = "random"

    def __init__(self) -> None:
        self.rng = np.random.default_rng(0)
        self.commands: list[str] = []

    def reset(self, observation: str, info: dict[str, Any], seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.commands = list(info.get("admissible_commands") or [])

    def act(self, observation: str, info: dict[str, Any]) -> str:
        return random_choice(self.rng, observation, self.commands)


class ScriptedAgent:
    """Base of the observation-only scripted agents.

    Subclasses implement :meth:`start` (read the task and first observation),
    :meth:`update` (read the result of the last action played, the agent's own
    or one chosen for it, e.g. by noise) and
    :meth:`decide` (the next action). ``act`` calls ``update`` then ``decide``.
    """

    name = "scripted"

    def __init__(self) -> None:
        self.last: str | None = None
        self.steps = 0

    def reset(self, observation: str, info: dict[str, Any], seed: int) -> None:
        self.last, self.steps = None, 0
        self.rng = np.random.default_rng(seed)
        self.commands = list(info.get("admissible_commands") or [])
        self.start(observation, info)

    def act(self, observation: str, info: dict[str, Any]) -> str:
        self.observe(observation, info)
        action = self.decide(observation, info)
        self.last, self.steps = action, self.steps + 1
        return action

    def observe(self, observation: str, info: dict[str, Any]) -> None:
        """Take in the latest observation without choosing an action."""
        if self.steps:
            self.update(self.last, observation, info)
        self.last = None

    def played(self, action: str) -> None:
        """Someone else chose ``action`` this step (noise); the agent only learns it happened."""
        self.last = action
        self.steps += 1

    # hooks
    def start(self, observation: str, info: dict[str, Any]) -> None:
        raise NotImplementedError

    def update(self, action: str | None, observation: str, info: dict[str, Any]) -> None:
        raise NotImplementedError

    def decide(self, observation: str, info: dict[str, Any]) -> str:
        raise NotImplementedError


class NoisyAgent:
    """``base`` with each action replaced, with probability ``eps``, by a random one."""

    def __init__(self, base: ScriptedAgent, eps: float):
        if not 0.0 <= eps <= 1.0:
            raise ValueError(f"noise eps must be in [0, 1], got {eps}")
        self.base, self.eps = base, eps
        self.name = f"{base.name}:{eps:g}"
        self.rng = np.random.default_rng(0)

    def reset(self, observation: str, info: dict[str, Any], seed: int) -> None:
        # A seed stream of its own, so noise does not shift the base agent's choices.
        self.rng = np.random.default_rng([seed, 1])
        self.base.reset(observation, info, seed)

    def act(self, observation: str, info: dict[str, Any]) -> str:
        if self.rng.random() < self.eps:
            self.base.observe(observation, info)
            action = random_choice(self.rng, observation, self.base.commands)
            self.base.played(action)
            return action
        return self.base.act(observation, info)


def env_family(env_id: str) -> str:
    """``TextWorld`` for ``TextWorld-v0`` and ``WM-TextWorld-v0``."""
    base = env_id.split("/")[-1]
    base = base[3:] if base.startswith("WM-") else base
    return re.sub(r"-v\d+$", "", base)


def scripted_agent(env_id: str) -> ScriptedAgent:
    """The scripted agent of an env (real or twin id)."""
    family = env_family(env_id)
    if family == "TextWorld":
        from wmgym.benchmarks.agents_textworld import TextWorldAgent

        return TextWorldAgent()
    if family == "ALFWorld":
        from wmgym.benchmarks.agents_alfworld import ALFWorldAgent

        return ALFWorldAgent()
    if family == "SciWorld":
        from wmgym.benchmarks.agents_sciworld import SciWorldAgent

        return SciWorldAgent()
    raise ValueError(f"no scripted agent for {env_id!r}; scripted agents exist for TextWorld, ALFWorld, SciWorld "
                     f"(use --agents random or react for other envs)")


def make_agent(spec: str, env_id: str, **react_kwargs: Any) -> Agent:
    """Build an agent from its spec: ``random``, ``scripted``, ``scripted:EPS`` or ``react``.

    ``react_kwargs`` (``url``, ``model``, ``hf_model``, ...) go to the ReAct agent.
    """
    if spec == "random":
        return RandomAgent()
    if spec == "scripted":
        return scripted_agent(env_id)
    if spec.startswith("scripted:"):
        try:
            eps = float(spec.partition(":")[2])
        except ValueError:
            raise ValueError(f"bad agent {spec!r}: the noise after 'scripted:' must be a number in [0, 1]") from None
        return NoisyAgent(scripted_agent(env_id), eps)
    if spec == "react":
        from wmgym.benchmarks.react import ReActAgent

        return ReActAgent(**react_kwargs)
    raise ValueError(f"unknown agent {spec!r}; valid agents: {list(AGENT_SPECS)}")


def play(env: Any, agent: Agent, *, seed: int, options: dict[str, Any] | None = None,
         max_steps: int | None = None) -> dict[str, Any]:
    """Play one episode of ``agent`` in ``env``; returns its actions, observations, infos, ``won``, steps."""
    obs, info = env.reset(seed=seed, options=options)
    agent.reset(obs, info, seed)
    actions, observations, infos = [], [obs], [info]
    done, won = False, False
    while not done:
        action = agent.act(obs, info)
        obs, _reward, terminated, truncated, info = env.step(action)
        actions.append(action)
        observations.append(obs)
        infos.append(info)
        won = bool(info.get("won", False))
        done = terminated or truncated or (max_steps is not None and len(actions) >= max_steps)
    return {"game_id": infos[0].get("game_id"), "actions": actions, "observations": observations,
            "infos": infos, "won": won, "steps": len(actions), "last_info": info}
