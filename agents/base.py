"""The agent protocol, the random and noise helpers every agent shares, and the episode loop.

Every agent, whether it rolls training data or is benchmarked, is one protocol::

    agent.reset(observation, info, seed, env=env)   # start an episode with env.reset's output
    agent.act(observation, info) -> str             # the next command

and carries a ``name`` (recorded as ``policy`` in every collected episode) and ``privileged``.

- **Observation-only** agents (``privileged = False``: ``random``, ``scripted``, ``react``) read what the
  env returns: the observation text, the task, and the admissible commands *at reset* (which a real env and
  its twin report alike). They ignore ``env``, so the same observations give the same actions in a real env
  and in its twin, which is what makes WM and W2R comparable with Real in ``wmgym bench consistency``.
- **Privileged** agents (``privileged = True``: ``expert``, ``noisy-expert:EPS``, ``explore``, ``random`` in
  collection, ``+score:P``) also read the engine through ``env.unwrapped`` (the expert asks for its next
  command) and the live admissible commands; a twin has neither, so they roll real envs
  (``wmgym collect``). Collection may use any agent.

The env comes with ``reset`` rather than at construction because it belongs to the episode: an agent is
built from its spec, and :func:`play`, the one episode loop, is where env and agent meet.

Randomness is seeded at ``reset`` with the episode's seed: a (game, seed) gives the same draws in a real env
and in its twin, and collection's episode ``k`` (seed ``seed + k``) the same draws as it always did.
"""

from __future__ import annotations

import re
from typing import Any, Protocol

import numpy as np

#: What a privileged random choice says where an env offers no admissible commands.
FALLBACK_ACTIONS = ("look", "inventory", "wait")


class Agent(Protocol):
    """Plays one episode at a time; see the module docstring."""

    name: str
    privileged: bool

    def reset(self, observation: str, info: dict[str, Any], seed: int | None, env: Any = None) -> None:
        """Start an episode (``observation``/``info`` from ``env.reset``; ``env`` for privileged agents)."""

    def act(self, observation: str, info: dict[str, Any]) -> str:
        """The next action given the latest observation and info."""


def candidate_commands(observation: str, reset_commands: list[str]) -> list[str]:
    """What an observation-only random choice draws from: the admissible commands *at reset*, the directions
    the observation mentions, ``look`` and ``inventory``.

    Not the current ``info["admissible_commands"]``: a twin cannot know which commands later states admit (it
    reports its reset list for the whole episode), so an agent that read the live list would act differently
    in the twin than in the real env for reasons that have nothing to do with the twin's dynamics.
    """
    low = observation.lower()
    dirs = {f"go {d}" for d in ("north", "south", "east", "west") if re.search(rf"\b{d}\b", low)}
    return sorted(set(reset_commands) | dirs | {"look", "inventory"})


def random_action(rng: np.random.Generator, commands: list[str] | tuple[str, ...]) -> str:
    """A uniformly random command of ``commands`` (the one random draw every agent makes)."""
    return str(commands[int(rng.integers(len(commands)))])


class BaseAgent:
    """What agents share: the episode's seeded ``rng``, the reset's admissible ``commands``, ``env``, and the
    list a random choice draws from (:meth:`choices`).

    Subclasses implement :meth:`start` (read the first observation) and :meth:`act`. :meth:`observe` and
    :meth:`played` let a wrapper (noise, score queries) play a step for the agent while it keeps track.
    """

    name = ""
    privileged = False

    def __init__(self) -> None:
        self.rng = np.random.default_rng(0)
        self.commands: list[str] = []
        self.env: Any = None

    def reset(self, observation: str, info: dict[str, Any], seed: int | None, env: Any = None) -> None:
        self.env = env
        self.rng = np.random.default_rng(seed)
        self.commands = list(info.get("admissible_commands") or [])
        self.start(observation, info)

    def start(self, observation: str, info: dict[str, Any]) -> None:
        """Read the first observation of an episode (after ``rng``, ``commands`` and ``env`` are set)."""

    def act(self, observation: str, info: dict[str, Any]) -> str:
        raise NotImplementedError

    def choices(self, observation: str, info: dict[str, Any]) -> list[str]:
        """What a random choice draws from now: the live admissible commands for a privileged agent,
        :func:`candidate_commands` for an observation-only one."""
        if self.privileged:
            return list(info.get("admissible_commands") or FALLBACK_ACTIONS)
        return candidate_commands(observation, self.commands)

    def random_action(self, observation: str, info: dict[str, Any], rng: np.random.Generator | None = None) -> str:
        """A random command of :meth:`choices`, drawn from ``rng`` (default: the agent's own)."""
        return random_action(self.rng if rng is None else rng, self.choices(observation, info))

    def observe(self, observation: str, info: dict[str, Any]) -> None:
        """Take in the latest observation without choosing an action (a wrapper chooses this step)."""

    def played(self, action: str) -> None:
        """A wrapper chose ``action`` this step; the agent only learns that it happened."""

    @property
    def engine(self) -> Any:
        """The unwrapped env a privileged agent reads."""
        if self.env is None:
            raise ValueError(f"agent {self.name!r} reads the engine: give it the env at reset "
                             f"(reset(observation, info, seed, env=env); play() does)")
        return self.env.unwrapped


class RandomAgent(BaseAgent):
    """Uniform over :meth:`~BaseAgent.choices` at every step: the live admissible commands when
    ``privileged`` (collection's ``random``), else what the observations suggest (the benchmarks')."""

    name = "random"

    def __init__(self, privileged: bool = False) -> None:
        super().__init__()
        self.privileged = privileged

    def act(self, observation: str, info: dict[str, Any]) -> str:
        return self.random_action(observation, info)


class ScriptedAgent(BaseAgent):
    """Base of the observation-only scripted agents (:mod:`wmgym.agents.scripted`).

    Subclasses implement :meth:`start` (read the task and first observation), :meth:`update` (read the
    result of the last action played, the agent's own or one chosen for it, e.g. by noise) and
    :meth:`decide` (the next action). ``act`` calls ``update`` then ``decide``.
    """

    name = "scripted"

    def __init__(self) -> None:
        super().__init__()
        self.last: str | None = None
        self.steps = 0

    def reset(self, observation: str, info: dict[str, Any], seed: int | None, env: Any = None) -> None:
        self.last, self.steps = None, 0
        super().reset(observation, info, seed, env)

    def act(self, observation: str, info: dict[str, Any]) -> str:
        self.observe(observation, info)
        action = self.decide(observation, info)
        self.last, self.steps = action, self.steps + 1
        return action

    def observe(self, observation: str, info: dict[str, Any]) -> None:
        if self.steps:
            self.update(self.last, observation, info)
        self.last = None

    def played(self, action: str) -> None:
        self.last = action
        self.steps += 1

    # hooks
    def start(self, observation: str, info: dict[str, Any]) -> None:
        raise NotImplementedError

    def update(self, action: str | None, observation: str, info: dict[str, Any]) -> None:
        raise NotImplementedError

    def decide(self, observation: str, info: dict[str, Any]) -> str:
        raise NotImplementedError


class Noisy:
    """``base`` with each action replaced, with probability ``eps``, by a random one of ``base``'s
    :meth:`~BaseAgent.choices` (``noisy-expert:EPS`` and ``scripted:EPS`` alike).

    The coin and the random pick use the streams each spec always used, so collected data and benchmark
    figures stay as they were: for a privileged base, the coin on ``seed`` and the pick on ``seed + 1``
    (``noisy-expert``); for an observation-only one, one stream ``[seed, 1]`` of its own, so noise does not
    shift the base agent's choices (``scripted:EPS``).
    """

    def __init__(self, base: BaseAgent, eps: float, name: str | None = None):
        if not 0.0 <= eps <= 1.0:
            raise ValueError(f"noise eps must be in [0, 1], got {eps}")
        self.base, self.eps = base, eps
        self.name = name or f"{base.name}:{eps:g}"
        self.privileged = base.privileged
        self.coin = self.pick = np.random.default_rng(0)

    def reset(self, observation: str, info: dict[str, Any], seed: int | None, env: Any = None) -> None:
        if self.base.privileged:
            self.coin = np.random.default_rng(seed)
            self.pick = np.random.default_rng(None if seed is None else seed + 1)
        else:
            self.coin = self.pick = np.random.default_rng(None if seed is None else [seed, 1])
        self.base.reset(observation, info, seed, env)

    def act(self, observation: str, info: dict[str, Any]) -> str:
        if self.coin.random() < self.eps:
            self.base.observe(observation, info)
            action = self.base.random_action(observation, info, self.pick)
            self.base.played(action)
            return action
        return self.base.act(observation, info)

    def observe(self, observation: str, info: dict[str, Any]) -> None:
        self.base.observe(observation, info)

    def played(self, action: str) -> None:
        self.base.played(action)


def play(env: Any, agent: Agent, *, seed: int | None, options: dict[str, Any] | None = None,
         max_steps: int | None = None) -> dict[str, Any]:
    """Play one episode of ``agent`` in ``env`` (the one episode loop of collection and benchmarks).

    Returns ``game_id``, ``actions``, ``observations`` (the reset's first), ``infos`` (likewise),
    ``rewards``, ``terminated``, ``truncated`` (one per step), ``won``, ``steps`` and ``last_info``.
    """
    obs, info = env.reset(seed=seed, options=options)
    agent.reset(obs, info, seed, env=env)
    actions, observations, infos = [], [obs], [info]
    rewards, terminated_, truncated_ = [], [], []
    done, won = False, False
    while not done:
        action = agent.act(obs, info)
        obs, reward, terminated, truncated, info = env.step(action)
        actions.append(action)
        observations.append(obs)
        infos.append(info)
        rewards.append(float(reward))
        terminated_.append(bool(terminated))
        truncated_.append(bool(truncated))
        won = bool(info.get("won", False))
        done = terminated or truncated or (max_steps is not None and len(actions) >= max_steps)
    return {"game_id": infos[0].get("game_id"), "actions": actions, "observations": observations,
            "infos": infos, "rewards": rewards, "terminated": terminated_, "truncated": truncated_, "won": won,
            "steps": len(actions), "last_info": info}
